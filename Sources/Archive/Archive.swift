/// The Archive library; see ../shared/DESIGN.md for its place in the stack.
public enum ArchiveModule {
    public static let name = "Archive"
}
