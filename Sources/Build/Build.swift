/// The Build library; see ../shared/DESIGN.md for its place in the stack.
public enum BuildModule {
    public static let name = "Build"
}
