#ifndef CRUNTIME_H
#define CRUNTIME_H
/*
 * The runtime's pre-thread work (runc's nsexec role).
 *
 * When the binary is re-executed with DOCKBUILD_INIT_ENV set to a socket fd,
 * a constructor runs before main (so before any Swift thread exists), reads an
 * init plan from that socket, creates or joins namespaces, forks the container
 * process and sets it up completely (mounts, pivot_root, devices, credentials,
 * capabilities, seccomp) before execve. It never returns into main in that mode.
 *
 * Plan wire format: records of { uint32 type; uint32 length; bytes[length] },
 * host byte order, ending with CR_END. Strings are NUL terminated.
 * Replies on the same socket: one byte tag, uint32 length, payload.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rootless.h"

#define CRUNTIME_INIT_ENV "_DOCKBUILD_INIT_FD"

enum cr_record {
    CR_END = 0,
    CR_MODE = 1,            /* u32: 1 create, 2 exec */
    CR_CLONE_FLAGS = 2,     /* u32: CLONE_NEW* to unshare */
    CR_NS_JOIN = 3,         /* u32 flag + path */
    CR_USERNS_MAPS = 4,     /* no payload: ask the parent to write id maps */
    CR_ROOTFS = 5,          /* path */
    CR_ROOT_PROPAGATION = 6,/* u32 mount flags for the rootfs after pivot */
    CR_READONLY_ROOT = 7,
    CR_MOUNT = 8,           /* u32 flags, u32 propagation, u32 kind, src, dst, fstype, data */
    CR_DEVICE = 9,          /* u32 type, major, minor, mode, uid, gid; path */
    CR_MASKED = 10,         /* path */
    CR_READONLY_PATH = 11,  /* path */
    CR_HOSTNAME = 12,
    CR_DOMAINNAME = 13,
    CR_SYSCTL = 14,         /* key, value */
    CR_ARG = 15,
    CR_ENV = 16,
    CR_CWD = 17,
    CR_UID = 18,            /* u32 */
    CR_GID = 19,            /* u32 */
    CR_GROUPS = 20,         /* u32[] */
    CR_UMASK = 21,          /* u32 */
    CR_CAPS = 22,           /* u64 bounding, effective, inheritable, permitted, ambient */
    CR_RLIMIT = 23,         /* u32 resource, u64 soft, u64 hard */
    CR_NO_NEW_PRIVS = 24,
    CR_OOM_SCORE_ADJ = 25,  /* i32 */
    CR_SECCOMP = 26,        /* struct sock_filter[] */
    CR_TERMINAL = 27,
    CR_CONSOLE_FD = 28,     /* u32 fd of a connected unix socket (inherited) */
    CR_FIFO = 29,           /* path of the exec fifo */
    CR_HOOK = 30,           /* u32 timeout seconds, path: starts a startContainer hook */
    CR_HOOK_ARG = 31,
    CR_HOOK_ENV = 32,
    CR_NO_PIVOT = 33,
    CR_SYNC_HOOKS = 34,     /* ask the parent to run hooks before pivot_root */
    CR_DEV_SYMLINKS = 35,   /* create the default /dev symlinks */
    CR_SETSID = 36,
    CR_ROOT_SLAVE = 37,     /* u32 flags to apply to / before setup (default MS_REC|MS_SLAVE) */
    CR_MOUNT_DEV_BIND = 38, /* bind device nodes from the host instead of mknod */
    CR_CHDIR_ROOTLESS = 39,
    CR_PERSONALITY = 40,    /* u32 personality(2) persona, set before exec */
    CR_TIME_OFFSETS = 41,   /* timens_offsets text, written after unshare(CLONE_NEWTIME) */
    CR_MOUNT_ATTR = 42,     /* u64 attr_set, u64 attr_clr: mount_setattr(AT_RECURSIVE) on the last CR_MOUNT */
    CR_DEV_READONLY = 43,   /* u32 recursive: make /dev read-only once its nodes and links exist */
    CR_SECCOMP_NOTIFY = 44, /* the filter has SCMP_ACT_NOTIFY rules: load it with a listener, reply 'S' */
};

enum cr_mount_kind { CR_MOUNT_NORMAL = 0, CR_MOUNT_BIND = 1 };

/* Replies from the init side. */
#define CR_REPLY_PID 'P'      /* u32 host pid of the container process */
#define CR_REPLY_MAPS 'U'     /* u32 pid that needs uid/gid maps */
#define CR_REPLY_HOOKS 'H'    /* parent runs prestart/createRuntime/createContainer */
#define CR_REPLY_READY 'R'    /* set up; waiting on the exec fifo */
#define CR_REPLY_ERROR 'E'    /* message */
#define CR_REPLY_SECCOMP 'S'  /* no payload; the seccomp listener fd follows (cruntime_send_fd) */
#define CR_REPLY_ACK 'A'      /* from the parent: continue; payload: state JSON */

int cruntime_version(void);

/* Forks stage 0 directly (no exec): the child keeps every fd at its number,
 * clears close-on-exec on the `npreserve` fds from 3, and runs the init from
 * `sock` without returning; `other` (the runtime's end) is closed there.
 * in/out/err >= 0 become the container's stdio. Only this thread exists in the child. */
pid_t cruntime_fork_init(int sock, int other, int npreserve, int in, int out, int err);

/* Forward the usual terminal/termination signals of this process to `pid`
 * (process-wide handlers, so every thread's delivery is covered). */
void cruntime_forward_signals(pid_t pid);

/* Forks a hook that runs in the namespaces of `target` (those that differ
 * from ours; not pid) with `stdin_fd` as stdin; `path` is opened before joining. */
pid_t cruntime_spawn_in_ns(pid_t target, const char *path, char *const argv[], char *const envp[], int stdin_fd);

/* Send and receive a file descriptor over a unix socket (console sockets). */
int cruntime_send_fd(int sock, int fd);

/* getxattr(2) of path (following links), for Swift, whose Glibc module lacks <sys/xattr.h>. */
long cruntime_getxattr(const char *path, const char *name, void *value, size_t size);
/* Sends `len` bytes of `buf` with `fd` attached (SCM_RIGHTS) on the first part; 0 or -1 with errno. */
int cruntime_send_fd_with(int sock, int fd, const void *buf, size_t len);
int cruntime_recv_fd(int sock);

/* Thin wrappers for syscalls Swift cannot reach directly. */
int cruntime_pivot_root(const char *new_root, const char *put_old);
int cruntime_prctl_set_child_subreaper(void);
int cruntime_memfd(const char *name);
int cruntime_pipe_cloexec(int fds[2]);
int cruntime_socketpair_cloexec(int fds[2]);

/* ---------- cgroup v2 device rules (devfilter.c) ---------- */

#define CR_DEV_MKNOD 1
#define CR_DEV_READ 2
#define CR_DEV_WRITE 4

/* One rule of linux.resources.devices, wildcards already resolved. */
struct cr_dev_rule {
    int64_t major;    /* -1: any */
    int64_t minor;    /* -1: any */
    char type;        /* 'a' (any), 'b' or 'c' */
    uint8_t allow;    /* 1 allow, 0 deny */
    uint8_t access;   /* CR_DEV_* bits */
    uint8_t pad;
};

/* Writes the BPF_PROG_TYPE_CGROUP_DEVICE program for `rules` (the last rule
 * that matches decides; none: `default_allow`) into `out` (struct bpf_insn[],
 * up to `cap`); returns the number of instructions it needs. */
long cruntime_devfilter_program(const struct cr_dev_rule *rules, size_t n, int default_allow, void *out, size_t cap);

/* Loads that program, attaches it to the cgroup v2 directory `cgfd`
 * (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) and detaches the device programs
 * dockbuild attached there before. 0, or -1 with errno and a message in `err`
 * (the verifier's log when the kernel refuses the program). */
int cruntime_devfilter_apply(int cgfd, const struct cr_dev_rule *rules, size_t n, int default_allow, char *err, size_t errsz);

/* How many dockbuild device programs are attached to `cgfd`, or -1. */
int cruntime_devfilter_count(int cgfd);
#endif
