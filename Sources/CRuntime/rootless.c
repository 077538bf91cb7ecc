/*
 * Rootless dockbuild: holding and joining the per-user user namespace before
 * main (see include/rootless.h). setns(CLONE_NEWUSER) and unshare of a user
 * namespace refuse a multi-threaded process, and the Swift runtime starts
 * threads early, so this runs in a constructor.
 */
#define _GNU_SOURCE
#include "rootless.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static void hold_report(int fd, char tag, int err) {
    char buf[5];
    buf[0] = tag;
    memcpy(buf + 1, &err, 4);
    ssize_t n;
    do { n = write(fd, buf, tag == 'E' ? 5 : 1); } while (n < 0 && errno == EINTR);
}

__attribute__((noreturn))
static void hold(const char *value) {
    int in = -1, out = -1;
    if (sscanf(value, "%d,%d", &in, &out) != 2 || in < 0 || out < 0) _exit(125);
    setsid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) { hold_report(out, 'E', errno); _exit(1); }
    hold_report(out, 'U', 0);
    char go = 0;
    ssize_t n;
    do { n = read(in, &go, 1); } while (n < 0 && errno == EINTR);
    if (n != 1 || go != 'M') _exit(1);
    /* uid and gid 0 here are the caller's own ids on the host */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) { hold_report(out, 'E', errno); _exit(1); }
    /* mounts made in this namespace (containers' root filesystems) stay in it */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) { hold_report(out, 'E', errno); _exit(1); }
    hold_report(out, 'R', 0);
    /* nothing of the caller's may stay open here (a pipe its parent reads to the end) */
    close_range(3, ~0U, 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }
    if (chdir("/") < 0) {}
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    for (;;) pause();
}

/* Joins the user and mount namespaces open in USER and MNT (of holder PID) and becomes root
 * there, keeping the working directory. */
static void enter_namespaces(long pid, int user, int mnt) {
    char cwd[PATH_MAX];
    int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
    if (setns(user, CLONE_NEWUSER) < 0) {
        dprintf(2, "dockbuild: cannot join the rootless user namespace of pid %ld: %s\n", pid, strerror(errno));
        _exit(125);
    }
    if (setns(mnt, CLONE_NEWNS) < 0) {
        dprintf(2, "dockbuild: cannot join the rootless mount namespace of pid %ld: %s\n", pid, strerror(errno));
        _exit(125);
    }
    close(user);
    close(mnt);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
        dprintf(2, "dockbuild: cannot become root in the rootless user namespace: %s\n", strerror(errno));
        _exit(125);
    }
    /* the host's supplementary groups mean nothing here (refused where setgroups is denied) */
    if (setgroups(0, NULL) < 0) {}
    if (!have_cwd || chdir(cwd) < 0) {
        if (chdir("/") < 0) {}
    }
}

/* Set by a join whose holder had died, for the one re-execution that follows. */
#define RETRIED_ENV "_DOCKBUILD_USERNS_RETRIED"
static long env_slot(const char *name);
static void env_remove(const char *name);

static void join(const char *value, long slot) {
    char *end = NULL;
    long pid = strtol(value, &end, 10);
    if (!end || *end || pid <= 0 || pid > INT32_MAX) {
        dprintf(2, "dockbuild: bad %s value \"%s\"\n", CRUNTIME_USERNS_JOIN_ENV, value);
        _exit(125);
    }
    uid_t host_uid = geteuid();
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
    int user = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
    int mnt = open(path, O_RDONLY | O_CLOEXEC);
    if (user < 0 || mnt < 0) {
        int err = errno;
        if (user >= 0) close(user);
        if (mnt >= 0) close(mnt);
        /* The holder died between the parent's check and this join: once, go on unjoined, so
         * that main finds no live holder, starts a new one and joins it (the retry mark takes
         * the join variable's slot in place, as below; main's re-execution inherits it). */
        if (env_slot(RETRIED_ENV) < 0 && (err == ENOENT || err == ESRCH)) {
            static char retried[] = RETRIED_ENV "=1";
            environ[slot] = retried;
            return;
        }
        dprintf(2, "dockbuild: cannot open the namespaces of the rootless namespace holder (pid %ld): %s; "
                   "kill it and retry (a new one is started)\n", pid, strerror(err));
        _exit(125);
    }
    enter_namespaces(pid, user, mnt);
    /* The join variable's slot becomes _DOCKBUILD_ROOTLESS=UID in place. setenv would move
     * environ off the initial stack, and a static Swift runtime finds argv by walking back from
     * environ (its ArgvGrabber may run after this constructor): CommandLine.arguments would be
     * empty and the command would print its help. */
    static char rootless[sizeof CRUNTIME_ROOTLESS_ENV + 16];
    snprintf(rootless, sizeof rootless, "%s=%u", CRUNTIME_ROOTLESS_ENV, (unsigned)host_uid);
    environ[slot] = rootless;
    env_remove(RETRIED_ENV);
}

/* The index in environ of NAME=..., or -1. */
static long env_slot(const char *name) {
    size_t len = strlen(name);
    for (long i = 0; environ[i]; i++)
        if (strncmp(environ[i], name, len) == 0 && environ[i][len] == '=') return i;
    return -1;
}

/* Removes every NAME=... from environ, in place (no reallocation). */
static void env_remove(const char *name) {
    size_t len = strlen(name);
    long out = 0;
    for (long i = 0; environ[i]; i++) {
        if (strncmp(environ[i], name, len) == 0 && environ[i][len] == '=') continue;
        environ[out++] = environ[i];
    }
    environ[out] = NULL;
}

int cruntime_rootless_needs_namespace(int argc, const char *const *argv) {
    int i = 0;
    /* the global options, as GlobalCommandLine.apply takes them */
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "-") != 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { i++; break; }
        if (strcmp(a, "-D") == 0 || strcmp(a, "--debug") == 0) continue;
        if (strcmp(a, "--root") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-l") == 0 || strcmp(a, "--log-level") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--root=", 7) == 0 || strncmp(a, "--config=", 9) == 0 || strncmp(a, "--log-level=", 12) == 0) continue;
        return 0; /* help, version, completion scripts or a usage error: nothing to run */
    }
    if (i >= argc) return 0;
    const char *first = argv[i];
    static const char *const outside[] = {"version", "login", "logout", "layer", "dockerfile", "help", "runtime", "completion"};
    for (size_t k = 0; k < sizeof outside / sizeof outside[0]; k++)
        if (strcmp(first, outside[k]) == 0) return 0;
    if (first[0] == '-') return 0;
    int runs = strcmp(first, "run") == 0 || strcmp(first, "create") == 0;
    for (int k = i + 1; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0) return 0;
        /* -h is run's and create's --hostname */
        if (strcmp(argv[k], "-h") == 0 && !runs) return 0;
    }
    if (strcmp(first, "registry") == 0 && i + 1 < argc && (strcmp(argv[i + 1], "serve") == 0 || strcmp(argv[i + 1], "gc") == 0)) return 0;
    return 1;
}

static long long joined_uid = -1;

long long cruntime_rootless_joined_uid(void) { return joined_uid; }

/* Defined by the dockbuild CLI alone: other programs that link this library
 * (dockbuild-runc, test runners) never join early. */
extern void dockbuild_rootless_early_join(void) __attribute__((weak));

/* The start time (field 22 of /proc/PID/stat) of PID, or 0. */
static unsigned long long start_time(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    /* after ") ": state is field 3; starttime is field 22 */
    for (int field = 2; field < 22 && p; field++) p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* The early join: the holder recorded in the user's runtime directory, checked as
 * RootlessNamespace.liveHolder checks it; returns without a change on anything unexpected. */
static void early_join(int argc, char **argv) {
    uid_t uid = geteuid();
    if (uid == 0 || argc < 1) return;
    /* outside the namespace the mark can only be the caller's: it would make main skip the join */
    env_remove(CRUNTIME_ROOTLESS_ENV);
    if (!cruntime_rootless_needs_namespace(argc - 1, (const char *const *)argv + 1)) return;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int len = xdg && xdg[0] == '/' ? snprintf(dir, sizeof dir, "%s/dockbuild", xdg)
                                   : snprintf(dir, sizeof dir, "/tmp/dockbuild-%u", (unsigned)uid);
    if (len <= 0 || (size_t)len >= sizeof dir) return;
    struct stat st;
    /* the user's own, closed to others (else main says what is wrong) */
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 022)) return;
    snprintf(path, sizeof path, "%s/userns.pid", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    char buf[64];
    ssize_t n = fstat(fd, &st) == 0 && st.st_uid == uid ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    long pid = 0;
    unsigned long long start = 0;
    if (sscanf(buf, "%ld %llu", &pid, &start) != 2 || pid <= 0 || pid > INT32_MAX || start == 0) return;
    snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
    int user = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
    int mnt = open(path, O_RDONLY | O_CLOEXEC);
    /* checked after the opens: the namespaces are the holder's, not a later process's with its pid */
    snprintf(path, sizeof path, "/proc/%ld", pid);
    if (user < 0 || mnt < 0 || stat(path, &st) < 0 || st.st_uid != uid || start_time(pid) != start) {
        if (user >= 0) close(user);
        if (mnt >= 0) close(mnt);
        return;
    }
    enter_namespaces(pid, user, mnt);
    joined_uid = uid;
}

__attribute__((constructor))
static void rootless_entry(int argc, char **argv, char **envp) {
    (void)envp;
    const char *h = getenv(CRUNTIME_USERNS_HOLD_ENV);
    if (h && *h) hold(h);
    long slot = env_slot(CRUNTIME_USERNS_JOIN_ENV);
    if (slot < 0) {
        /* DOCKBUILD_ROOTLESS_REEXEC=1: the way of the first command, for benchmarks and as a way out */
        const char *reexec = getenv("DOCKBUILD_ROOTLESS_REEXEC");
        if (dockbuild_rootless_early_join && !(reexec && *reexec && strcmp(reexec, "0") != 0)) early_join(argc, argv);
        return;
    }
    char value[32];
    snprintf(value, sizeof value, "%s", environ[slot] + sizeof CRUNTIME_USERNS_JOIN_ENV);
    if (!*value) return;
    /* a _DOCKBUILD_ROOTLESS the caller set must not shadow the one join writes */
    env_remove(CRUNTIME_ROOTLESS_ENV);
    slot = env_slot(CRUNTIME_USERNS_JOIN_ENV);
    join(value, slot);
}
