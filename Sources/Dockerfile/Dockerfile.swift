/// The Dockerfile library; see ../shared/DESIGN.md for its place in the stack.
public enum DockerfileModule {
    public static let name = "Dockerfile"
}
