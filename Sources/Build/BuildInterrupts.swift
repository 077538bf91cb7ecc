import Foundation
import Synchronization
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Stops a build cleanly on SIGINT or SIGTERM. While RUN steps run, their containers are killed,
/// so the steps fail, unwind and remove their overlays, namespaces and files, and the build ends
/// with an error; `received` then tells the caller which signal ended it. When no RUN runs, when
/// the build has not unwound within `grace` seconds, or on a second signal, the handler cleans
/// the process's build sessions itself and exits with 128 + the signal.
public enum BuildInterrupts {
    struct State {
        var installed = false
        var signal: Int32 = 0
        var runs: [String: String] = [:]   // container id -> runtime root
        var sessions: Set<String> = []
        var sources: [any DispatchSourceSignal] = []
    }
    static let state = Mutex(State())
    /// Seconds the build gets to unwind after a signal before the handler exits for it.
    static let grace: Double = 10

    /// Installs the SIGINT and SIGTERM handlers (once per process). Call it from a program
    /// that builds; a library user with its own signal handling can call `interrupt(_:)` instead.
    public static func install() {
        let queue = DispatchQueue(label: "dockbuild.build.signals")
        state.withLock { s in
            guard !s.installed else { return }
            s.installed = true
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                src.setEventHandler { interrupt(sig) }
                src.resume()
                s.sources.append(src)
            }
        }
    }

    /// The signal that interrupted the build, 0 when none did.
    public static var received: Int32 { state.withLock { $0.signal } }

    /// Interrupts the build: kills its RUN containers; a second call exits at once.
    public static func interrupt(_ sig: Int32) {
        let (first, runs) = state.withLock { s -> (Bool, [String: String]) in
            let first = s.signal == 0
            if first { s.signal = sig }
            return (first, s.runs)
        }
        // nothing to unwind (no RUN running: a pull, a COPY, an export) or asked twice: stop now
        if !first || runs.isEmpty { finish(sig) }
        for (id, root) in runs { try? Runtime(root: root).kill(id: id, signal: SIGKILL) }
        let grace = self.grace
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: grace)
            finish(sig)
        }
    }

    /// Last resort: clean every session of this process and exit.
    static func finish(_ sig: Int32) {
        let sessions = state.withLock { $0.sessions }
        for dir in sessions.sorted() { BuildSession.cleanUp(dir) }
        _exit(128 + sig)
    }

    /// Throws when the build was interrupted (checked before each step starts a container).
    static func check() throws {
        let sig = received
        if sig != 0 { throw BuildError.system("the build was interrupted by signal \(sig)") }
    }

    /// Registers a RUN container so an interrupt kills it; throws if the build is already interrupted.
    static func register(run id: String, runtimeRoot: String) throws {
        let sig = state.withLock { s -> Int32 in
            if s.signal == 0 { s.runs[id] = runtimeRoot }
            return s.signal
        }
        if sig != 0 { throw BuildError.system("the build was interrupted by signal \(sig)") }
    }

    static func unregister(run id: String) { state.withLock { _ = $0.runs.removeValue(forKey: id) } }

    static func register(session dir: String) { state.withLock { _ = $0.sessions.insert(dir) } }
    static func unregister(session dir: String) { state.withLock { _ = $0.sessions.remove(dir) } }
}
