// The second layer: typed instructions with all their flags (BuildKit's
// instructions package). Field names follow the Dockerfile reference.

/// Where an instruction came from, shared by every instruction struct.
public struct InstructionSource: Sendable, Hashable {
    /// The keyword as written (`RUN`, `run`, ...).
    public var keyword: String
    /// The logical line (continuations joined, comments removed).
    public var original: String
    public var range: SourceRange
    public var startLine: Int
    public var endLine: Int
    /// Comment lines directly above the instruction.
    public var comments: [String]
}

/// A command given in shell form (run through the stage's SHELL) or exec form (JSON).
public struct CommandLine: Sendable, Hashable {
    /// Exec form: the argv; shell form: one string, the command text.
    public var arguments: [String]
    /// True for shell form: the builder prepends the SHELL (default `/bin/sh -c`).
    public var prependShell: Bool
    /// Heredocs whose bodies become the script or extra files (RUN only).
    public var files: [Heredoc]
}

/// A key/value pair of ENV or LABEL; values are unexpanded (quotes kept).
public struct KeyValuePair: Sendable, Hashable {
    public var key: String
    public var value: String
    /// True for the legacy `ENV key value` form.
    public var noDelimiter: Bool
}

/// One name of an ARG instruction, with its default when given.
public struct ArgDeclaration: Sendable, Hashable {
    public var key: String
    public var value: String?
}

/// A source given inline as a heredoc (`COPY <<EOF /dst`).
public struct SourceContent: Sendable, Hashable {
    /// The heredoc name, used as the file name.
    public var path: String
    public var data: String
    /// False when the delimiter was quoted: variables in `data` are not expanded.
    public var expand: Bool
}

public struct FromInstruction: Sendable, Hashable {
    public var source: InstructionSource
    /// The image or stage name, before ARG expansion.
    public var baseName: String
    /// The `AS name`, lower-cased; nil for an unnamed stage.
    public var stageName: String?
    /// `--platform`, unexpanded.
    public var platform: String?
}

public struct RunInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var command: CommandLine
    /// `--mount` values as written (unexpanded), in order.
    public var mountSpecs: [String]
    /// The mounts, parsed; a spec that uses variables is parsed after expansion (see `Mount.parse`).
    public var mounts: [Mount]
    /// `--network`: default, none or host.
    public var network: String
    /// `--security`: sandbox or insecure.
    public var security: String
    /// Names of the flags that were given.
    public var flagsUsed: [String]
}

public struct CmdInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var command: CommandLine
}

public struct EntrypointInstruction: Sendable, Hashable {
    public var source: InstructionSource
    /// Empty exec form (`ENTRYPOINT []`) clears the entrypoint.
    public var command: CommandLine
}

public struct LabelInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var labels: [KeyValuePair]
}

public struct EnvInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var env: [KeyValuePair]
}

public struct MaintainerInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var maintainer: String
}

public struct ExposeInstruction: Sendable, Hashable {
    public var source: InstructionSource
    /// Port specs as written, sorted as BuildKit sorts them (`80`, `53/udp`, `8000-8010/tcp`).
    public var ports: [String]
}

public struct AddInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var sources: [String]
    public var sourceContents: [SourceContent]
    public var destination: String
    public var chown: String?
    public var chmod: String?
    public var link: Bool
    /// `--keep-git-dir`, nil when not given.
    public var keepGitDir: Bool?
    public var checksum: String?
    /// `--unpack`, nil when not given.
    public var unpack: Bool?
    public var excludes: [String]
}

public struct CopyInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var sources: [String]
    public var sourceContents: [SourceContent]
    public var destination: String
    /// `--from`: a stage name, a stage index, or an image reference.
    public var from: String?
    public var chown: String?
    public var chmod: String?
    public var link: Bool
    public var parents: Bool
    public var excludes: [String]
}

public struct VolumeInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var volumes: [String]
}

public struct UserInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var user: String
}

public struct WorkdirInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var path: String
}

public struct ArgInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var args: [ArgDeclaration]
}

public struct OnbuildInstruction: Sendable, Hashable {
    public var source: InstructionSource
    /// The trigger text (with heredoc bodies), stored in the image config.
    public var expression: String
    /// The trigger's keyword, upper-cased.
    public var triggerKeyword: String
}

public struct StopSignalInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var signal: String
}

public struct HealthcheckInstruction: Sendable, Hashable {
    public var source: InstructionSource
    /// `["NONE"]`, `["CMD", argv...]` or `["CMD-SHELL", command]`, as in the image config.
    public var test: [String]
    /// Durations in nanoseconds; 0 means "use the default".
    public var interval: Int64
    public var timeout: Int64
    public var startPeriod: Int64
    public var startInterval: Int64
    public var retries: Int
}

public struct ShellInstruction: Sendable, Hashable {
    public var source: InstructionSource
    public var shell: [String]
}

/// One typed instruction.
public enum Instruction: Sendable, Hashable {
    case from(FromInstruction)
    case run(RunInstruction)
    case cmd(CmdInstruction)
    case label(LabelInstruction)
    case maintainer(MaintainerInstruction)
    case expose(ExposeInstruction)
    case env(EnvInstruction)
    case add(AddInstruction)
    case copy(CopyInstruction)
    case entrypoint(EntrypointInstruction)
    case volume(VolumeInstruction)
    case user(UserInstruction)
    case workdir(WorkdirInstruction)
    case arg(ArgInstruction)
    case onbuild(OnbuildInstruction)
    case stopSignal(StopSignalInstruction)
    case healthcheck(HealthcheckInstruction)
    case shell(ShellInstruction)

    public var source: InstructionSource {
        switch self {
        case .from(let i): i.source
        case .run(let i): i.source
        case .cmd(let i): i.source
        case .label(let i): i.source
        case .maintainer(let i): i.source
        case .expose(let i): i.source
        case .env(let i): i.source
        case .add(let i): i.source
        case .copy(let i): i.source
        case .entrypoint(let i): i.source
        case .volume(let i): i.source
        case .user(let i): i.source
        case .workdir(let i): i.source
        case .arg(let i): i.source
        case .onbuild(let i): i.source
        case .stopSignal(let i): i.source
        case .healthcheck(let i): i.source
        case .shell(let i): i.source
        }
    }

    /// The keyword in upper case (`RUN`, `COPY`, ...).
    public var keyword: String { source.keyword.uppercased() }

    /// True for the instructions whose arguments BuildKit expands with ARG/ENV
    /// values (ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
    /// WORKDIR, ARG); RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are left to the shell.
    public var expandsVariables: Bool {
        switch self {
        case .add, .copy, .env, .expose, .from, .label, .stopSignal, .user, .volume, .workdir, .arg: true
        default: false
        }
    }

    /// All instruction keywords, upper-cased (for suggestions and docs).
    public static let keywords = [
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    ]
}
