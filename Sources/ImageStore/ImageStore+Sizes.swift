// Image sizes as docker shows them (`images`, `history`, `inspect`'s Size): the bytes of the
// files the layers hold, uncompressed, not the compressed blobs a registry moves.
import Foundation
import OCI
import SystemSupport
#if canImport(Glibc)
import Glibc
#endif

extension ImageStore {
    /// The file of known layer sizes: one line "DIGEST SIZE" per layer, appended with one
    /// O_APPEND write (whole lines, whatever other processes append); read once per store.
    var layerSizesPath: String { "\(root)/layer-sizes" }

    /// docker's size of a layer: the sizes of the regular files in its tar (a hard link counted
    /// once). Read from the layer the first time and kept in `layer-sizes`; a layer that is not
    /// stored or cannot be read counts its compressed size.
    public func contentSize(ofLayer layer: Descriptor) -> Int64 {
        let key = layer.digest.description
        let known = layerSizes.withLock { cache -> Int64? in
            if cache == nil { cache = Self.readLayerSizes(layerSizesPath) }
            return cache?[key]
        }
        if let known { return known }
        guard MediaType.isLayer(layer.mediaType), has(layer.digest) else { return max(0, layer.size) }
        var total: Int64 = 0
        do {
            try TarReader.forEachEntry(path: path(for: layer.digest), what: "layer \(layer.digest)", allowEmpty: true) { e, _ in
                if e.isRegular && !e.isHardlink && e.size > 0 { total &+= e.size }
            }
        } catch {
            return max(0, layer.size)
        }
        let fd = open(layerSizesPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd >= 0 {
            let line = Array("\(key) \(total)\n".utf8)
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        layerSizes.withLock { $0?[key] = total }
        return total
    }

    /// docker's size of an image: its layers' `contentSize`s.
    public func contentSize(of layers: [Descriptor]) -> Int64 {
        layers.reduce(Int64(0)) { sum, l in
            let (r, overflow) = sum.addingReportingOverflow(contentSize(ofLayer: l))
            return overflow ? Int64.max : r
        }
    }

    static func readLayerSizes(_ path: String) -> [String: Int64] {
        guard let d = FileManager.default.contents(atPath: path) else { return [:] }
        var out: [String: Int64] = [:]
        for line in d.split(separator: UInt8(ascii: "\n")) {
            let f = line.split(separator: UInt8(ascii: " "))
            guard f.count == 2, let n = Int64(String(decoding: f[1], as: UTF8.self)), n >= 0 else { continue }
            out[String(decoding: f[0], as: UTF8.self)] = n
        }
        return out
    }
}
