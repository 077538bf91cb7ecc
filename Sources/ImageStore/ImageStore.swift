/// The ImageStore library; see ../shared/DESIGN.md for its place in the stack.
public enum ImageStoreModule {
    public static let name = "ImageStore"
}
