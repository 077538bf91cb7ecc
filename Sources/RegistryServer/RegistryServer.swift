/// The RegistryServer library; see ../shared/DESIGN.md for its place in the stack.
public enum RegistryServerModule {
    public static let name = "RegistryServer"
}
