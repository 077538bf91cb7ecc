/// The Registry library; see ../shared/DESIGN.md for its place in the stack.
public enum RegistryModule {
    public static let name = "Registry"
}
