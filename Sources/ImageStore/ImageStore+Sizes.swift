// Image sizes as docker shows them (`images`, `history`, `inspect`'s Size): the bytes of the
// files the layers hold, uncompressed, not the compressed blobs a registry moves.
import Foundation
import OCI
import SystemSupport

extension ImageStore {
    /// docker's size of a layer: the sizes of the regular files in its tar (a hard link counted
    /// once). Read from the layer once and kept under `sizes/` (a file per layer digest); a layer
    /// that is not stored or cannot be read counts its compressed size.
    public func contentSize(ofLayer layer: Descriptor) -> Int64 {
        let cache = "\(root)/sizes/\(layer.digest.algorithm.rawValue)-\(layer.digest.encoded)"
        if let d = FileManager.default.contents(atPath: cache), let n = Int64(String(decoding: d, as: UTF8.self)) { return n }
        guard MediaType.isLayer(layer.mediaType), has(layer.digest) else { return max(0, layer.size) }
        var total: Int64 = 0
        do {
            try TarReader.forEachEntry(path: path(for: layer.digest), what: "layer \(layer.digest)", allowEmpty: true) { e, _ in
                if e.isRegular && !e.isHardlink && e.size > 0 { total &+= e.size }
            }
        } catch {
            return max(0, layer.size)
        }
        _ = try? FileSystem.makeDirectories("\(root)/sizes")
        try? FileSystem.writeAtomically(Data(String(total).utf8), to: cache, durability: .none)
        return total
    }

    /// docker's size of an image: its layers' `contentSize`s.
    public func contentSize(of layers: [Descriptor]) -> Int64 {
        layers.reduce(Int64(0)) { sum, l in
            let (r, overflow) = sum.addingReportingOverflow(contentSize(ofLayer: l))
            return overflow ? Int64.max : r
        }
    }
}
