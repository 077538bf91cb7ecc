/// The Runtime library; see ../shared/DESIGN.md for its place in the stack.
public enum RuntimeModule {
    public static let name = "Runtime"
}
