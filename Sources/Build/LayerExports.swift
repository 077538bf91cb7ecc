import Foundation
import OCI
import ImageStore
#if canImport(Glibc)
import Glibc
#endif

/// One layer of a stage: stored (its blob and diffID known), or still being written.
enum StageLayer: Sendable {
    case ready(LayerRef)
    case pending(PendingLayer)

    var pending: PendingLayer? {
        if case .pending(let p) = self { return p }
        return nil
    }

    /// The stored layer; waits for one being written and rethrows its write's error.
    func stored() throws -> LayerRef {
        switch self {
        case .ready(let r): return r
        case .pending(let p): return try p.wait()
        }
    }

    /// The stored layer if it is stored now (nil while being written, or when its write failed).
    var storedNow: LayerRef? {
        switch self {
        case .ready(let r): return r
        case .pending(let p): return try? p.finished?.get()
        }
    }
}

/// A layer a step has just made, whose blob is written on a background thread while the next
/// steps run (issue #15). Its directory (a COPY's staging tree or a RUN's upper, already the
/// layer's unpacked form) serves as an overlay lower for those steps where it lies, and is moved
/// into the snapshotter when the build joins its layer writes (`LayerExports.finish`): a
/// snapshot is named by its chain ID, which needs the diffID being computed.
final class PendingLayer: @unchecked Sendable {
    /// The layer's files, in the build's session directory until the join.
    let dir: String
    /// The step that made it (its history `created_by`), for errors.
    let step: String
    /// The layers below it when it was made (for its chain ID at the join).
    let parents: [StageLayer]
    private let cond = NSCondition()
    private var outcome: Result<LayerRef, any Error>?

    init(dir: String, step: String, parents: [StageLayer]) {
        self.dir = dir
        self.step = step
        self.parents = parents
    }

    func set(_ r: Result<LayerRef, any Error>) {
        cond.lock()
        outcome = r
        cond.broadcast()
        cond.unlock()
    }

    /// The stored layer, once its blob is in the store; rethrows the write's error.
    func wait() throws -> LayerRef {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let outcome { return try outcome.get() }
            cond.wait()
        }
    }

    /// The outcome if the write has finished.
    var finished: Result<LayerRef, any Error>? {
        cond.lock(); defer { cond.unlock() }
        return outcome
    }
}

/// The build's layer writes: one background thread writes each new layer's blob (tar, diffID,
/// gzip, compressed digest, fsync, rename into the store) and then its cache record, in the order
/// the steps made them, while the builder goes on with the next steps, which only need the
/// layer's directory and the step's cache key. `finish` joins them before the image's config and
/// manifest are written. The bytes are the same as when written in line: the same writer reads
/// the same finished directory, which no later step changes (it is a read-only lower).
///
/// A failed write fails the build at the next step boundary (`check`) or at the join, with an
/// error that names the step whose layer it was; its temp file is removed. Whatever happens, the
/// builder waits for the writes (`drain`) before it removes its session directory.
final class LayerExports: @unchecked Sendable {
    private let queue = DispatchQueue(label: "dockbuild.build.layers", qos: .userInitiated)
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var layers: [PendingLayer] = []
    /// The layers by the key of the step that made them, for a later stage of this build that
    /// runs the same step: it takes the same layer (and directory) instead of the stored blob,
    /// which has no snapshot until the join.
    private var byKey: [String: PendingLayer] = [:]
    private var committed = 0
    /// In line (the write runs before `submit` returns): for comparisons and a serial fallback.
    let inline: Bool

    init(inline: Bool) { self.inline = inline }

    /// Writes `layer` with `write` in the background (or now when `inline`, throwing its error).
    func submit(_ layer: PendingLayer, key: String, _ write: @escaping @Sendable () throws -> LayerRef) throws {
        lock.lock()
        layers.append(layer)
        byKey[key] = layer
        lock.unlock()
        if inline {
            let r = Result { try write() }
            layer.set(r)
            _ = try r.get()
            return
        }
        group.enter()
        queue.async { [group] in
            // An interrupted build stores no more layers: its session directory (these layers'
            // files) may be removed under the writer (`BuildInterrupts.finish`).
            layer.set(Result {
                try LayerExports.checkNotInterrupted(layer.step)
                return try write()
            })
            group.leave()
        }
    }

    /// Throws when the build was interrupted: called before a layer write starts, and by the
    /// write itself after its blob is made and before the blob and its cache record are stored,
    /// so that a layer whose directory an interrupt's clean-up removed while it was read (a tar
    /// with files missing, with a valid digest) never reaches the store or the cache.
    static func checkNotInterrupted(_ step: String) throws {
        let sig = BuildInterrupts.received
        if sig != 0 { throw BuildError.system("the layer of `\(step)` was not stored: the build was interrupted by signal \(sig)") }
    }

    /// The layer this build made for the step `key`, if it made one.
    func layer(forKey key: String) -> PendingLayer? {
        lock.lock(); defer { lock.unlock() }
        return byKey[key]
    }

    /// Throws the error of the first layer write that has failed so far.
    func check() throws {
        lock.lock()
        let all = layers
        lock.unlock()
        for l in all {
            if case .failure(let e)? = l.finished { throw e }
        }
    }

    /// Waits for every write; throws the first failure. Then moves each layer's directory into
    /// the snapshotter under its chain ID (a snapshot that exists already wins; the copy is
    /// removed).
    func finish(_ snapshotter: Snapshotter) throws {
        group.wait()
        try check()
        try commitSnapshots(snapshotter, strict: true)
    }

    /// After a failed build: waits for the writes still running, then keeps as snapshots the
    /// layers that were stored (their cache records exist, so the next build reuses them without
    /// unpacking); the rest goes with the session directory.
    func drain(_ snapshotter: Snapshotter) {
        group.wait()
        // After an interrupt the directories may be going (or gone) with the session.
        guard BuildInterrupts.received == 0 else { return }
        try? commitSnapshots(snapshotter, strict: false)
    }

    private func commitSnapshots(_ snapshotter: Snapshotter, strict: Bool) throws {
        lock.lock()
        let todo = Array(layers[committed...])
        committed = layers.count
        lock.unlock()
        for l in todo {
            guard case .success(let ref)? = l.finished else { continue }
            let below = l.parents.compactMap(\.storedNow)
            guard below.count == l.parents.count else { continue }
            let parents = below.map(\.diffID)
            do {
                try snapshotter.commit(l.dir, parents: parents, layer: ref.snapshotLayer)
            } catch {
                if strict { throw BuildError.system("cannot keep the layer of `\(l.step)` as a snapshot: \(error)") }
            }
        }
    }
}
