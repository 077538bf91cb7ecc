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

static void join(const char *value) {
    char *end = NULL;
    long pid = strtol(value, &end, 10);
    if (!end || *end || pid <= 0 || pid > INT32_MAX) {
        dprintf(2, "dockbuild: bad %s value \"%s\"\n", CRUNTIME_USERNS_JOIN_ENV, value);
        _exit(125);
    }
    uid_t host_uid = geteuid();
    char cwd[PATH_MAX];
    int have_cwd = getcwd(cwd, sizeof cwd) != NULL;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
    int user = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
    int mnt = open(path, O_RDONLY | O_CLOEXEC);
    if (user < 0 || mnt < 0) {
        dprintf(2, "dockbuild: cannot open the namespaces of the rootless namespace holder (pid %ld): %s; "
                   "kill it and retry (a new one is started)\n", pid, strerror(errno));
        _exit(125);
    }
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
    char uid[16];
    snprintf(uid, sizeof uid, "%u", (unsigned)host_uid);
    setenv(CRUNTIME_ROOTLESS_ENV, uid, 1);
}

__attribute__((constructor))
static void rootless_entry(void) {
    const char *h = getenv(CRUNTIME_USERNS_HOLD_ENV);
    if (h && *h) hold(h);
    const char *j = getenv(CRUNTIME_USERNS_JOIN_ENV);
    if (!j || !*j) return;
    char value[32];
    snprintf(value, sizeof value, "%s", j);
    unsetenv(CRUNTIME_USERNS_JOIN_ENV);
    join(value);
}
