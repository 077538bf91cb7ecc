import CArchive

// Thin aliases so the helpers read naturally.
func dockbuildTestListXattr(_ path: UnsafePointer<CChar>, _ list: UnsafeMutablePointer<CChar>, _ size: Int) -> Int {
    dockbuild_llistxattr(path, list, size)
}
func dockbuildTestGetXattr(_ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>, _ value: UnsafeMutableRawPointer, _ size: Int) -> Int {
    dockbuild_lgetxattr(path, name, value, size)
}
func setXattr(_ path: String, _ name: String, _ value: [UInt8]) -> Int32 {
    path.withCString { p in name.withCString { n in value.withUnsafeBytes { dockbuild_lsetxattr(p, n, $0.baseAddress, value.count) } } }
}
