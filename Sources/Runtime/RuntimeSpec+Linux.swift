// config-linux.md fields beyond the core model: personality and time
// namespace offsets (stored on RuntimeSpec.Linux).

import CRuntime

extension RuntimeSpec {
    /// `linux.personality` (config-linux.md#personality): the execution domain
    /// the process runs in, e.g. LINUX32 so that `uname -m` says i686.
    public struct Personality: Codable, Sendable, Equatable {
        /// "LINUX" or "LINUX32".
        public var domain: String
        /// No flags are defined by the spec yet; any given is an error.
        public var flags: [String]?
        public init(domain: String, flags: [String]? = nil) {
            self.domain = domain
            self.flags = flags
        }
    }

    /// One clock's offset in `linux.timeOffsets` (keys "monotonic" and "boottime"),
    /// applied to a new time namespace.
    public struct TimeOffset: Codable, Sendable, Equatable {
        public var secs: Int64?
        public var nanosecs: UInt32?
        public init(secs: Int64? = nil, nanosecs: UInt32? = nil) {
            self.secs = secs
            self.nanosecs = nanosecs
        }
    }
}

extension Runtime {
    /// personality(2) domain numbers of the spec's names.
    static let personalityDomains: [String: UInt32] = ["LINUX": 0x0000, "LINUX32": 0x0008]

    /// Plan records for personality and time offsets; `newTimeNS` tells whether
    /// the container gets a time namespace of its own (offsets need one).
    static func linuxExtrasPlan(_ linux: RuntimeSpec.Linux?, newTimeNS: Bool, into p: inout InitPlan) throws {
        if let per = linux?.personality {
            guard let domain = personalityDomains[per.domain] else {
                throw RuntimeError(.invalidSpec, "linux.personality.domain \"\(per.domain)\" is not LINUX or LINUX32")
            }
            if let f = per.flags, !f.isEmpty {
                throw RuntimeError(.invalidSpec, "linux.personality.flags \(f) are not supported (the spec defines none)")
            }
            p.record(CR_PERSONALITY, InitPlan.u32(domain))
        }
        if let offsets = linux?.timeOffsets, !offsets.isEmpty {
            guard newTimeNS else {
                throw RuntimeError(.invalidSpec, "linux.timeOffsets need a new time namespace: add {\"type\": \"time\"} to linux.namespaces")
            }
            var text = ""
            for (clock, o) in offsets.sorted(by: { $0.key < $1.key }) {
                guard clock == "monotonic" || clock == "boottime" else {
                    throw RuntimeError(.invalidSpec, "linux.timeOffsets key \"\(clock)\" is not monotonic or boottime")
                }
                let ns = o.nanosecs ?? 0
                guard ns < 1_000_000_000 else {
                    throw RuntimeError(.invalidSpec, "linux.timeOffsets.\(clock).nanosecs \(ns) must be below 1000000000")
                }
                text += "\(clock) \(o.secs ?? 0) \(ns)\n"
            }
            p.string(CR_TIME_OFFSETS, text)
        }
    }
}
