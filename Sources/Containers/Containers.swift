/// The Containers library; see ../shared/DESIGN.md for its place in the stack.
public enum ContainersModule {
    public static let name = "Containers"
}
