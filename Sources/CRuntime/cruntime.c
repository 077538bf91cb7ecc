/*
 * dockbuild's container init, the part that has to run before any thread
 * exists (see include/cruntime.h for the protocol).
 *
 * Stage 0 is the re-executed binary: it reads the plan, joins or creates
 * namespaces (a user namespace first, with the parent writing the id maps),
 * then forks the container process with CLONE_PARENT so that the runtime that
 * spawned us is its parent, reports that pid and exits. The container process
 * sets up the root filesystem, credentials and capabilities, reports READY and
 * (for create) blocks on the exec fifo until `start`, then execs.
 */
#define _GNU_SOURCE
#include <sys/xattr.h>
#include "cruntime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int cruntime_version(void) { return 2; }

/* ---------- small helpers ---------- */

struct strv { char **v; size_t n, cap; };
static void strv_push(struct strv *s, char *p) {
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = realloc(s->v, s->cap * sizeof(char *));
        if (!s->v) _exit(120);
    }
    s->v[s->n++] = p;
    s->v[s->n] = NULL;
}

struct mnt { uint32_t flags, pflags, kind; uint64_t attr_set, attr_clr; char *src, *dst, *fstype, *data; int srcfd; };
struct dev { uint32_t type, major, minor, mode, uid, gid; char *path; };
struct rlim { uint32_t res; uint64_t soft, hard; };
struct nsj { uint32_t flag; char *path; int fd; };
struct hook { uint32_t timeout; char *path; struct strv args, env; };

struct plan {
    uint32_t mode, clone_flags, root_prop, root_slave;
    int userns_maps, readonly_root, nnp, terminal, no_pivot, sync_hooks, dev_symlinks, setsid, dev_bind;
    int console_fd, has_oom, has_caps, has_umask, has_uid, has_persona;
    int dev_readonly; /* 0: no, 1: /dev only, 2: /dev and the mounts below it */
    int seccomp_notify, seccomp_loaded;
    uint32_t persona;
    char *time_offsets;
    int32_t oom;
    uint32_t uid, gid, umask_v;
    uint32_t *groups; size_t ngroups;
    uint64_t caps[5];
    char *rootfs, *hostname, *domainname, *cwd, *fifo;
    struct strv args, env, masked, ropaths, sysctl;
    struct mnt *mounts; size_t nmounts;
    struct dev *devs; size_t ndevs;
    struct rlim *rlims; size_t nrlims;
    struct nsj *joins; size_t njoins;
    struct hook *hooks; size_t nhooks;
    struct sock_filter *bpf; size_t nbpf;
};

static int g_sock = -1;
static int g_trace = -1;

/* Phase timings on stderr with DOCKBUILD_RUNTIME_TRACE set (see bench/runtime.sh). */
static void trace(const char *what) {
    if (g_trace < 0) g_trace = getenv("DOCKBUILD_RUNTIME_TRACE") != NULL;
    if (!g_trace) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    dprintf(2, "trace %lld us init %s\n", (long long)(ts.tv_sec % 1000) * 1000000 + ts.tv_nsec / 1000, what);
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r < 0) { if (errno == EINTR) continue; return -1; }
        if (r == 0) return -1;
        p += r; len -= (size_t)r;
    }
    return 0;
}

static void reply(char tag, const void *payload, uint32_t len) {
    if (g_sock < 0) return;
    char hdr[5];
    hdr[0] = tag;
    memcpy(hdr + 1, &len, 4);
    write_all(g_sock, hdr, 5);
    if (len) write_all(g_sock, payload, len);
}

__attribute__((noreturn, format(printf, 1, 2)))
static void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
    int e = errno;
    if (e) n += snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(e));
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
    if (g_sock >= 0) reply(CR_REPLY_ERROR, msg, (uint32_t)n);
    else dprintf(2, "dockbuild init: %s\n", msg);
    _exit(127);
}

/* Wait for the parent's answer; returns its payload (NUL terminated). */
static char *wait_ack(uint32_t *lenp) {
    char hdr[5];
    if (read_all(g_sock, hdr, 5) < 0) { errno = 0; die("runtime went away"); }
    uint32_t len;
    memcpy(&len, hdr + 1, 4);
    char *p = malloc(len + 1);
    if (!p) _exit(120);
    if (len && read_all(g_sock, p, len) < 0) { errno = 0; die("short read from runtime"); }
    p[len] = 0;
    if (hdr[0] != CR_REPLY_ACK) { errno = 0; _exit(126); }
    if (lenp) *lenp = len;
    return p;
}

static uint32_t u32at(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64at(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

#define GROW(arr, n) do { arr = realloc(arr, ((n) + 1) * sizeof(*(arr))); if (!(arr)) _exit(120); } while (0)

/* Successive NUL-terminated strings of a payload. */
static char *next_str(char **cur, char *end) {
    char *s = *cur;
    if (s >= end) return "";
    size_t l = strnlen(s, (size_t)(end - s));
    *cur = s + l + 1;
    return s;
}

static void read_plan(int fd, struct plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->console_fd = -1;
    pl->root_slave = MS_REC | MS_SLAVE;
    /* The whole plan arrives as one length-prefixed block: one read, no per-record syscalls. */
    uint32_t total;
    if (read_all(fd, &total, 4) < 0) { errno = 0; die("reading init plan"); }
    char *buf = malloc((size_t)total + 1);
    if (!buf) _exit(120);
    if (total && read_all(fd, buf, total) < 0) { errno = 0; die("reading init plan"); }
    buf[total] = 0;
    size_t off = 0;
    for (;;) {
        if (off + 8 > total) { errno = 0; die("truncated init plan"); }
        uint32_t type = u32at(buf + off), len = u32at(buf + off + 4);
        off += 8;
        if (off + len > total) { errno = 0; die("truncated init plan"); }
        /* Each payload is copied so that strings get their terminating NUL. */
        char *p = malloc((size_t)len + 1);
        if (!p) _exit(120);
        memcpy(p, buf + off, len);
        p[len] = 0;
        off += len;
        char *cur = p, *end = p + len;
        switch (type) {
        case CR_END: free(p); return;
        case CR_MODE: pl->mode = u32at(p); break;
        case CR_CLONE_FLAGS: pl->clone_flags = u32at(p); break;
        case CR_NS_JOIN:
            GROW(pl->joins, pl->njoins);
            pl->joins[pl->njoins].flag = u32at(p);
            pl->joins[pl->njoins].path = p + 4;
            pl->joins[pl->njoins].fd = -1;
            pl->njoins++;
            break;
        case CR_USERNS_MAPS: pl->userns_maps = 1; break;
        case CR_ROOTFS: pl->rootfs = p; break;
        case CR_ROOT_PROPAGATION: pl->root_prop = u32at(p); break;
        case CR_ROOT_SLAVE: pl->root_slave = u32at(p); break;
        case CR_READONLY_ROOT: pl->readonly_root = 1; break;
        case CR_MOUNT: {
            GROW(pl->mounts, pl->nmounts);
            struct mnt *m = &pl->mounts[pl->nmounts++];
            memset(m, 0, sizeof *m);
            m->srcfd = -1;
            m->flags = u32at(p); m->pflags = u32at(p + 4); m->kind = u32at(p + 8);
            cur = p + 12;
            m->src = next_str(&cur, end); m->dst = next_str(&cur, end);
            m->fstype = next_str(&cur, end); m->data = next_str(&cur, end);
            break;
        }
        case CR_DEVICE: {
            GROW(pl->devs, pl->ndevs);
            struct dev *d = &pl->devs[pl->ndevs++];
            d->type = u32at(p); d->major = u32at(p + 4); d->minor = u32at(p + 8);
            d->mode = u32at(p + 12); d->uid = u32at(p + 16); d->gid = u32at(p + 20);
            d->path = p + 24;
            break;
        }
        case CR_MASKED: strv_push(&pl->masked, p); break;
        case CR_READONLY_PATH: strv_push(&pl->ropaths, p); break;
        case CR_HOSTNAME: pl->hostname = p; break;
        case CR_DOMAINNAME: pl->domainname = p; break;
        case CR_SYSCTL: strv_push(&pl->sysctl, next_str(&cur, end)); strv_push(&pl->sysctl, next_str(&cur, end)); break;
        case CR_ARG: strv_push(&pl->args, p); break;
        case CR_ENV: strv_push(&pl->env, p); break;
        case CR_CWD: pl->cwd = p; break;
        case CR_UID: pl->uid = u32at(p); pl->has_uid = 1; break;
        case CR_GID: pl->gid = u32at(p); break;
        case CR_GROUPS: pl->groups = (uint32_t *)p; pl->ngroups = len / 4; break;
        case CR_UMASK: pl->umask_v = u32at(p); pl->has_umask = 1; break;
        case CR_CAPS: for (int i = 0; i < 5; i++) pl->caps[i] = u64at(p + 8 * i); pl->has_caps = 1; break;
        case CR_RLIMIT:
            GROW(pl->rlims, pl->nrlims);
            pl->rlims[pl->nrlims].res = u32at(p);
            pl->rlims[pl->nrlims].soft = u64at(p + 4);
            pl->rlims[pl->nrlims].hard = u64at(p + 12);
            pl->nrlims++;
            break;
        case CR_NO_NEW_PRIVS: pl->nnp = 1; break;
        case CR_OOM_SCORE_ADJ: pl->oom = (int32_t)u32at(p); pl->has_oom = 1; break;
        case CR_SECCOMP: pl->bpf = (struct sock_filter *)p; pl->nbpf = len / sizeof(struct sock_filter); break;
        case CR_TERMINAL: pl->terminal = 1; break;
        case CR_CONSOLE_FD: pl->console_fd = (int)u32at(p); break;
        case CR_FIFO: pl->fifo = p; break;
        case CR_HOOK:
            GROW(pl->hooks, pl->nhooks);
            memset(&pl->hooks[pl->nhooks], 0, sizeof(struct hook));
            pl->hooks[pl->nhooks].timeout = u32at(p);
            pl->hooks[pl->nhooks].path = p + 4;
            pl->nhooks++;
            break;
        case CR_HOOK_ARG: if (pl->nhooks) strv_push(&pl->hooks[pl->nhooks - 1].args, p); break;
        case CR_HOOK_ENV: if (pl->nhooks) strv_push(&pl->hooks[pl->nhooks - 1].env, p); break;
        case CR_NO_PIVOT: pl->no_pivot = 1; break;
        case CR_SYNC_HOOKS: pl->sync_hooks = 1; break;
        case CR_DEV_SYMLINKS: pl->dev_symlinks = 1; break;
        case CR_SETSID: pl->setsid = 1; break;
        case CR_MOUNT_DEV_BIND: pl->dev_bind = 1; break;
        case CR_PERSONALITY: pl->persona = u32at(p); pl->has_persona = 1; break;
        case CR_TIME_OFFSETS: pl->time_offsets = p; break;
        case CR_MOUNT_ATTR:
            if (pl->nmounts && len >= 16) {
                pl->mounts[pl->nmounts - 1].attr_set = u64at(p);
                pl->mounts[pl->nmounts - 1].attr_clr = u64at(p + 8);
            }
            break;
        case CR_DEV_READONLY: pl->dev_readonly = u32at(p) ? 2 : 1; break;
        case CR_SECCOMP_NOTIFY: pl->seccomp_notify = 1; break;
        default: break;
        }
    }
}

/* ---------- paths inside the rootfs ---------- */

/* Resolve `path` inside `root` the way a chroot would, so that symlinks in the
 * image cannot point the runtime at host paths. Missing components are kept. */
static void secure_join(const char *root, const char *path, char *out, size_t outsz) {
    char rel[PATH_MAX * 2];
    char todo[PATH_MAX * 2];
    snprintf(todo, sizeof todo, "%s", path);
    rel[0] = 0;
    int links = 0;
    char *p = todo;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char comp[NAME_MAX + 1];
        if (l > NAME_MAX) l = NAME_MAX;
        memcpy(comp, p, l);
        comp[l] = 0;
        p += l;
        if (strcmp(comp, ".") == 0) continue;
        if (strcmp(comp, "..") == 0) {
            char *s = strrchr(rel, '/');
            if (s) *s = 0; else rel[0] = 0;
            continue;
        }
        char cand[PATH_MAX * 2], full[PATH_MAX * 3];
        snprintf(cand, sizeof cand, "%s/%s", rel, comp);
        snprintf(full, sizeof full, "%s%s", root, cand);
        char target[PATH_MAX];
        ssize_t tl = readlink(full, target, sizeof target - 1);
        if (tl >= 0 && links < 40) {
            links++;
            target[tl] = 0;
            char rest[PATH_MAX * 2];
            snprintf(rest, sizeof rest, "%s/%s", target, p);
            if (target[0] == '/') rel[0] = 0;
            snprintf(todo, sizeof todo, "%s", rest);
            p = todo;
            continue;
        }
        snprintf(rel, sizeof rel, "%s", cand);
    }
    snprintf(out, outsz, "%s%s", root, rel[0] ? rel : "/");
}

static void mkdir_p(const char *path, mode_t mode) {
    char buf[PATH_MAX * 3];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s == '/') { *s = 0; mkdir(buf, mode); *s = '/'; }
    }
    mkdir(buf, mode);
}

static void parent_dir(const char *path, char *out, size_t sz) {
    snprintf(out, sz, "%s", path);
    char *s = strrchr(out, '/');
    if (s && s != out) *s = 0;
}

static void ensure_file(const char *path) {
    char dir[PATH_MAX * 3];
    parent_dir(path, dir, sizeof dir);
    mkdir_p(dir, 0755);
    struct stat st;
    if (lstat(path, &st) == 0) return;
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
}

/* ---------- root filesystem ---------- */

/* A bind remount replaces the mount's flags: the ones it has (nosuid, nodev, noexec, atime)
 * are kept, never dropped on the way to read-only. */
static void remount_ro_keep(const char *path, unsigned long extra) {
    struct statvfs sv;
    if (statvfs(path, &sv) < 0) die("statfs %s", path);
    unsigned long keep = 0;
    if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
    if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | extra | keep, NULL) < 0)
        die("remount %s read-only", path);
}

/* pivot_root refuses a new root whose parent mount is shared: make the mount
 * that holds the rootfs private (in our namespace only), as runc does. */
static void make_parent_private(const char *rootfs) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) die("open mountinfo");
    char line[4096], best[PATH_MAX] = "/";
    size_t bestlen = 1;
    while (fgets(line, sizeof line, f)) {
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
        size_t l = strlen(mp);
        if (l > bestlen && strncmp(rootfs, mp, l) == 0 && (rootfs[l] == '/' || rootfs[l] == 0) && strcmp(mp, rootfs) != 0) {
            snprintf(best, sizeof best, "%s", mp);
            bestlen = l;
        }
    }
    fclose(f);
    if (mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0) die("make %s private", best);
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
/* struct mount_attr of linux/mount.h (not included: it clashes with sys/mount.h). */
struct cr_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

/* Applies mount attributes to `path` and every mount below it (runc's rro, rnosuid, ...). */
static void set_tree_attrs(const char *path, const char *shown, uint64_t set, uint64_t clr) {
    struct cr_mount_attr a = { .attr_set = set, .attr_clr = clr };
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &a, sizeof a) == 0) return;
    if (errno == ENOSYS)
        die("recursive mount options (rro, rnosuid, ...) on %s need mount_setattr(2), Linux 5.12 or later", shown);
    die("apply recursive mount options to %s", shown);
}

static void do_mounts(struct plan *pl) {
    const unsigned long propmask = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
    for (size_t i = 0; i < pl->nmounts; i++) {
        struct mnt *m = &pl->mounts[i];
        char dst[PATH_MAX * 3];
        secure_join(pl->rootfs, m->dst, dst, sizeof dst);
        unsigned long flags = m->flags & ~propmask;
        if (m->kind == CR_MOUNT_BIND) {
            /* With a user namespace the source was opened by the host's root (see
             * open_bind_sources) and is mounted through its descriptor. */
            char fdpath[64];
            const char *src = m->src;
            struct stat st;
            if (m->srcfd >= 0) {
                snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", m->srcfd);
                src = fdpath;
                if (fstat(m->srcfd, &st) < 0) die("bind mount source %s", m->src);
            } else if (stat(m->src, &st) < 0) {
                die("bind mount source %s", m->src);
            }
            if (S_ISDIR(st.st_mode)) mkdir_p(dst, 0755); else ensure_file(dst);
            if (mount(src, dst, NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
                die("bind mount %s on %s", m->src, m->dst);
            if (m->srcfd >= 0) { close(m->srcfd); m->srcfd = -1; }
            unsigned long rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
            if (rest) {
                if (rest & MS_RDONLY) remount_ro_keep(dst, rest & ~MS_RDONLY);
                else if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | rest, NULL) < 0)
                    die("remount %s", m->dst);
            }
        } else {
            mkdir_p(dst, 0755);
            const char *data = m->data[0] ? m->data : NULL;
            if (mount(m->src, dst, m->fstype, flags, data) < 0) {
                /* sysfs and mqueue cannot be mounted without owning the net/ipc
                 * namespace; bind the host's the way runc does for rootless. */
                if ((errno == EPERM || errno == EBUSY) && strcmp(m->fstype, "sysfs") == 0) {
                    if (mount("/sys", dst, NULL, MS_BIND | MS_REC, NULL) < 0) die("mount sysfs on %s", m->dst);
                } else if (errno == EPERM && strcmp(m->fstype, "mqueue") == 0) {
                    if (mount("/dev/mqueue", dst, NULL, MS_BIND, NULL) < 0) die("mount mqueue on %s", m->dst);
                } else if (data) {
                    die("mount %s (%s, options \"%s\") on %s", m->src, m->fstype, data, m->dst);
                } else {
                    die("mount %s (%s) on %s", m->src, m->fstype, m->dst);
                }
            }
        }
        if (m->pflags && mount(NULL, dst, NULL, m->pflags, NULL) < 0)
            die("set propagation of %s", m->dst);
        if (m->attr_set || m->attr_clr) set_tree_attrs(dst, m->dst, m->attr_set, m->attr_clr);
    }
}

static void do_devices(struct plan *pl) {
    for (size_t i = 0; i < pl->ndevs; i++) {
        struct dev *d = &pl->devs[i];
        char path[PATH_MAX * 3];
        secure_join(pl->rootfs, d->path, path, sizeof path);
        char dir[PATH_MAX * 3];
        parent_dir(path, dir, sizeof dir);
        mkdir_p(dir, 0755);
        mode_t kind = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        if (!pl->dev_bind) {
            unlink(path);
            if (mknod(path, kind | (d->mode & 07777), makedev(d->major, d->minor)) == 0) {
                if (chown(path, d->uid, d->gid) < 0) die("chown %s", d->path);
                chmod(path, d->mode & 07777);
                continue;
            }
            if (errno != EPERM) die("mknod %s", d->path);
        }
        ensure_file(path);
        if (mount(d->path, path, NULL, MS_BIND, NULL) < 0) die("bind device %s", d->path);
    }
    if (pl->dev_symlinks) {
        static const char *links[][2] = {
            {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
            {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
        };
        char path[PATH_MAX * 3];
        for (size_t i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "%s%s", pl->rootfs, links[i][1]);
            if (symlink(links[i][0], path) < 0 && errno != EEXIST) die("symlink %s", links[i][1]);
        }
        snprintf(path, sizeof path, "%s/dev/ptmx", pl->rootfs);
        struct stat st;
        if (lstat(path, &st) < 0 && symlink("pts/ptmx", path) < 0) die("symlink /dev/ptmx");
        if (access("/proc/kcore", F_OK) == 0) {
            snprintf(path, sizeof path, "%s/dev/core", pl->rootfs);
            if (symlink("/proc/kcore", path) < 0 && errno != EEXIST) die("symlink /dev/core");
        }
    }
}

static void enter_root(struct plan *pl) {
    if (pl->no_pivot) {
        if (chdir(pl->rootfs) < 0) die("chdir %s", pl->rootfs);
        if (mount(pl->rootfs, "/", NULL, MS_MOVE, NULL) < 0) die("move rootfs to /");
        if (chroot(".") < 0) die("chroot");
        if (chdir("/") < 0) die("chdir /");
        return;
    }
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0) die("open /");
    int newroot = open(pl->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (newroot < 0) die("open rootfs %s", pl->rootfs);
    if (fchdir(newroot) < 0) die("fchdir rootfs");
    if (syscall(SYS_pivot_root, ".", ".") < 0) {
        /* pivot_root fails on an initramfs root; moving the mount works there. */
        close(oldroot); close(newroot);
        pl->no_pivot = 1;
        enter_root(pl);
        return;
    }
    if (fchdir(oldroot) < 0) die("fchdir old root");
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) die("make old root slave");
    if (umount2(".", MNT_DETACH) < 0) die("unmount old root");
    if (chdir("/") < 0) die("chdir /");
    close(oldroot); close(newroot);
}

static void after_root(struct plan *pl) {
    if (pl->root_prop && mount(NULL, "/", NULL, pl->root_prop, NULL) < 0) die("set rootfs propagation");
    for (size_t i = 0; i + 1 < pl->sysctl.n; i += 2) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "/proc/sys/%s", pl->sysctl.v[i]);
        for (char *s = path + 10; *s; s++) if (*s == '.') *s = '/';
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) die("sysctl %s", pl->sysctl.v[i]);
        if (write_all(fd, pl->sysctl.v[i + 1], strlen(pl->sysctl.v[i + 1])) < 0) die("sysctl %s", pl->sysctl.v[i]);
        close(fd);
    }
    for (size_t i = 0; i < pl->ropaths.n; i++) {
        const char *p = pl->ropaths.v[i];
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT) continue;
            die("bind %s", p);
        }
        remount_ro_keep(p, MS_REC);
    }
    for (size_t i = 0; i < pl->masked.n; i++) {
        const char *p = pl->masked.v[i];
        struct stat st;
        if (stat(p, &st) < 0) { if (errno == ENOENT) continue; die("stat %s", p); }
        if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) < 0) die("mask %s", p);
        } else if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) {
            die("mask %s", p);
        }
    }
    /* /dev was mounted writable so that its nodes, links and the mounts below it could be made. */
    if (pl->dev_readonly == 2) set_tree_attrs("/dev", "/dev", 0x1 /* MOUNT_ATTR_RDONLY */, 0);
    else if (pl->dev_readonly == 1) remount_ro_keep("/dev", 0);
    if (pl->readonly_root) remount_ro_keep("/", 0);
    if (pl->hostname && sethostname(pl->hostname, strlen(pl->hostname)) < 0) die("sethostname");
    if (pl->domainname && setdomainname(pl->domainname, strlen(pl->domainname)) < 0) die("setdomainname");
}

/* ---------- process ---------- */

static void setup_terminal(struct plan *pl) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) die("open /dev/ptmx");
    if (unlockpt(master) < 0) die("unlockpt");
    char name[128];
    if (ptsname_r(master, name, sizeof name) != 0) die("ptsname");
    int slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0) die("open %s", name);
    /* The process's user owns its terminal, as with runc: only the uid changes (the group stays
     * devpts' tty group). Refused (an unmapped id in a user namespace) is not fatal, as for runc. */
    struct stat st;
    if (pl->has_uid && fstat(slave, &st) == 0 && st.st_uid != pl->uid &&
        fchown(slave, pl->uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM)
        die("chown %s to uid %u", name, pl->uid);
    if (pl->console_fd >= 0) {
        if (cruntime_send_fd(pl->console_fd, master) < 0) die("send console to console socket");
        close(pl->console_fd);
    }
    close(master);
    for (int i = 0; i < 3; i++) if (dup2(slave, i) < 0) die("dup2 console");
    if (ioctl(0, TIOCSCTTY, 0) < 0) die("set controlling terminal");
    if (slave > 2) close(slave);
}

static int cap_last(void) {
    int last = 40;
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char b[16] = {0};
        if (read(fd, b, sizeof b - 1) > 0) last = atoi(b);
        close(fd);
    }
    return last;
}

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
static void load_seccomp(struct plan *pl) {
    if (!pl->nbpf || pl->seccomp_loaded) return;
    pl->seccomp_loaded = 1;
    struct sock_fprog prog = { .len = (unsigned short)pl->nbpf, .filter = pl->bpf };
    if (!pl->seccomp_notify) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) die("load seccomp filter");
        return;
    }
    /* SCMP_ACT_NOTIFY rules: the filter comes with a listener descriptor, which the runtime
     * passes on to the agent at linux.seccomp.listenerPath. Only the sendmsg and write of this
     * hand-over run under the filter before the agent has it (the runtime refuses NOTIFY for them). */
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0) die("load seccomp filter with a notification listener");
    reply(CR_REPLY_SECCOMP, NULL, 0);
    if (cruntime_send_fd(g_sock, fd) < 0) die("send the seccomp listener to the runtime");
    close(fd);
}

/* /proc/self/setgroups says "deny": setgroups(2) is refused in this user namespace. */
static int setgroups_denied(void) {
    char buf[16] = {0};
    int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n >= 4 && strncmp(buf, "deny", 4) == 0;
}

static void set_credentials(struct plan *pl) {
    int last = cap_last();
    if (pl->has_caps) {
        for (int c = 0; c <= last; c++)
            if (!(pl->caps[0] & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                die("drop capability %d from the bounding set", c);
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) die("keep capabilities");
    if (pl->has_uid) {
        gid_t *g = NULL;
        if (pl->ngroups) {
            g = calloc(pl->ngroups, sizeof(gid_t));
            if (!g) _exit(120);
            for (size_t i = 0; i < pl->ngroups; i++) g[i] = pl->groups[i];
        }
        /* A user namespace with setgroups denied (rootless, one id mapped) keeps the groups
         * it has: the kernel refuses any change there, as runc finds too. */
        if (setgroups(pl->ngroups, g) < 0 && !(errno == EPERM && (pl->ngroups == 0 || setgroups_denied()))) die("setgroups");
        if (setresgid(pl->gid, pl->gid, pl->gid) < 0) die("setgid %u", pl->gid);
        if (setresuid(pl->uid, pl->uid, pl->uid) < 0) die("setuid %u", pl->uid);
    }
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) die("clear keepcaps");
    if (pl->has_caps) {
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2];
        for (int i = 0; i < 2; i++) {
            data[i].effective = (uint32_t)(pl->caps[1] >> (32 * i));
            data[i].inheritable = (uint32_t)(pl->caps[2] >> (32 * i));
            data[i].permitted = (uint32_t)(pl->caps[3] >> (32 * i));
        }
        if (syscall(SYS_capset, &hdr, data) < 0) die("set capabilities");
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        for (int c = 0; c <= last; c++)
            /* Raising needs the cap in permitted and inheritable; runc skips those it cannot raise. */
            if ((pl->caps[4] & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM)
                die("raise ambient capability %d", c);
    }
}

static const char *lookup_env(struct plan *pl, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < pl->env.n; i++)
        if (strncmp(pl->env.v[i], key, kl) == 0 && pl->env.v[i][kl] == '=') return pl->env.v[i] + kl + 1;
    return NULL;
}

static char *resolve_exe(struct plan *pl) {
    if (!pl->args.n) { errno = 0; die("process.args is empty"); }
    char *a0 = pl->args.v[0];
    if (strchr(a0, '/')) {
        /* Checked now, so that `create` fails (as runc's does) instead of a `start` that
         * exits 0 with a container that never ran: missing is ENOENT, a directory or a
         * file without an execute bit EACCES (the words of runc and docker). */
        struct stat st;
        if (stat(a0, &st) < 0) {
            char why[128];
            snprintf(why, sizeof why, "%s", strerror(errno));
            if (why[0] >= 'A' && why[0] <= 'Z') why[0] = (char)(why[0] - 'A' + 'a');
            errno = 0;
            die("exec: \"%s\": stat %s: %s", a0, a0, why);
        }
        if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111)) { errno = 0; die("exec: \"%s\": permission denied", a0); }
        return a0;
    }
    const char *path = lookup_env(pl, "PATH");
    if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    static char buf[PATH_MAX];
    const char *s = path;
    while (*s) {
        const char *e = strchr(s, ':');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)l, l ? s : ".", a0);
        struct stat st;
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return buf;
        if (!e) break;
        s = e + 1;
    }
    errno = 0;
    die("exec: \"%s\": executable file not found in $PATH", a0);
}

static void run_hooks(struct plan *pl, const char *state, size_t slen) {
    for (size_t i = 0; i < pl->nhooks; i++) {
        struct hook *h = &pl->hooks[i];
        int in[2];
        if (pipe2(in, O_CLOEXEC) < 0) die("pipe");
        pid_t pid = fork();
        if (pid < 0) die("fork hook");
        if (pid == 0) {
            dup2(in[0], 0);
            if (!h->args.n) strv_push(&h->args, h->path);
            if (!h->env.v) strv_push(&h->env, NULL), h->env.n = 0;
            execve(h->path, h->args.v, h->env.v);
            dprintf(2, "startContainer hook %s: %s\n", h->path, strerror(errno));
            _exit(127);
        }
        close(in[0]);
        write_all(in[1], state, slen);
        close(in[1]);
        int status = 0;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            pid_t r = waitpid(pid, &status, h->timeout ? WNOHANG : 0);
            if (r == pid) break;
            if (r < 0 && errno != EINTR) die("wait hook");
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (h->timeout && now.tv_sec - t0.tv_sec >= (time_t)h->timeout) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                dprintf(2, "startContainer hook %s timed out after %us\n", h->path, h->timeout);
                _exit(127);
            }
            struct timespec d = {0, 2000000};
            nanosleep(&d, NULL);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            dprintf(2, "startContainer hook %s failed (status %d)\n", h->path, status);
            _exit(127);
        }
    }
}

/* The container process: everything after the namespaces exist. */
/* The container's program is not exec'd by this process directly but through a 512-byte
 * trampoline held in a sealed memfd, so that while the kernel resolves the program (and an
 * interpreter line such as "#!/proc/self/exe") /proc/self/exe is the trampoline, never the
 * host's dockbuild binary: container root must not get a writable handle on the runtime
 * (the CVE-2019-5736 kind of escape). The trampoline is x86-64 code written for this:
 *
 *     _start: mov (%rsp),%rcx; cmp $2,%rcx; jb fail         argc >= 2
 *             mov 8(%rsp),%rax; movabs $0x002174696e696264,%rdx; cmp (%rax),%rdx; jne fail
 *                                                            argv[0] == "dbinit!"
 *             mov 16(%rsp),%rdi; lea 24(%rsp),%rsi           execve(argv[1], &argv[2],
 *             lea 16(%rsp,%rcx,8),%rdx; mov $59,%eax; syscall        envp)
 *     fail:   mov $127,%edi; mov $60,%eax; syscall           exit(127)
 *
 * assembled with `clang -nostdlib -static -s -Wl,--build-id=none -Wl,-n -Wl,-z,norelro`.
 * Run any other way (argv[0] is not the marker, as for an interpreter line) it exits 127.
 * Elsewhere, or when the memfd or execveat is refused (vm.memfd_noexec, a seccomp profile
 * without execveat), the program is exec'd directly as before. */
#if defined(__x86_64__)
static const unsigned char trampoline_elf[] = {
    0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x38, 0x00, 0x01, 0x00, 0x40, 0x00, 0x04, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x0c, 0x24, 0x48, 0x83, 0xf9, 0x02,
    0x72, 0x2a, 0x48, 0x8b, 0x44, 0x24, 0x08, 0x48, 0xba, 0x64, 0x62, 0x69, 0x6e, 0x69, 0x74, 0x21,
    0x00, 0x48, 0x3b, 0x10, 0x75, 0x16, 0x48, 0x8b, 0x7c, 0x24, 0x10, 0x48, 0x8d, 0x74, 0x24, 0x18,
    0x48, 0x8d, 0x54, 0xcc, 0x10, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00,
    0x00, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x04, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x47, 0x4e, 0x55, 0x00, 0x67, 0x6f, 0x6c, 0x64, 0x20, 0x31, 0x2e, 0x31,
    0x36, 0x00, 0x00, 0x00, 0x00, 0x2e, 0x74, 0x65, 0x78, 0x74, 0x00, 0x2e, 0x6e, 0x6f, 0x74, 0x65,
    0x2e, 0x67, 0x6e, 0x75, 0x2e, 0x67, 0x6f, 0x6c, 0x64, 0x2d, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f,
    0x6e, 0x00, 0x2e, 0x73, 0x68, 0x73, 0x74, 0x72, 0x74, 0x61, 0x62, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x1e, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
#endif
static int g_trampoline = -1;

static void make_trampoline(void) {
#if defined(__x86_64__)
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
    int fd = (int)syscall(SYS_memfd_create, "dockbuild-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0) fd = (int)syscall(SYS_memfd_create, "dockbuild-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return;
    if (write_all(fd, (const char *)trampoline_elf, sizeof trampoline_elf) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        close(fd);
        return;
    }
    g_trampoline = fd;
#endif
}

static void exec_program(const char *exe, char **args, char **env) {
    if (g_trampoline >= 0 && args) {
        size_t n = 0;
        while (args[n]) n++;
        char **v = malloc((n + 3) * sizeof(char *));
        if (v) {
            v[0] = (char *)"dbinit!";
            v[1] = (char *)exe;
            memcpy(v + 2, args, (n + 1) * sizeof(char *));
            syscall(SYS_execveat, g_trampoline, "", v, env, AT_EMPTY_PATH);
            free(v);
        }
    }
    execve(exe, args, env);
}

__attribute__((noreturn))
static void container_process(struct plan *pl, int fifo) {
    if (pl->setsid && setsid() < 0) die("setsid");
    /* Through the host's /proc, before the root changes. */
    if (pl->has_oom) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0) die("open oom_score_adj");
        char b[16];
        int n = snprintf(b, sizeof b, "%d", pl->oom);
        if (write(fd, b, (size_t)n) < 0) die("set oom_score_adj %d", pl->oom);
        close(fd);
    }
    if (pl->mode == 1 && !(pl->clone_flags & CLONE_NEWNS)) {
        /* No mount namespace of its own: mounts would land in the host's, so
         * the container only gets the rootfs as its root, like runc does. */
        if (pl->sync_hooks) {
            reply(CR_REPLY_HOOKS, NULL, 0);
            free(wait_ack(NULL));
        }
        if (chroot(pl->rootfs) < 0) die("chroot %s", pl->rootfs);
        if (chdir("/") < 0) die("chdir /");
        if (pl->hostname && sethostname(pl->hostname, strlen(pl->hostname)) < 0) die("sethostname");
        if (pl->domainname && setdomainname(pl->domainname, strlen(pl->domainname)) < 0) die("setdomainname");
    } else if (pl->mode == 1) {
        if (mount(NULL, "/", NULL, pl->root_slave, NULL) < 0) die("make / %s", "slave");
        if (pl->root_slave & MS_SHARED) make_parent_private(pl->rootfs);
        if (mount(pl->rootfs, pl->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) die("bind rootfs %s", pl->rootfs);
        trace("container process");
        do_mounts(pl);
        trace("mounted");
        do_devices(pl);
        trace("devices");
        if (pl->sync_hooks) {
            reply(CR_REPLY_HOOKS, NULL, 0);
            free(wait_ack(NULL));
        }
        enter_root(pl);
        trace("pivoted");
        after_root(pl);
        trace("masked");
    }
    if (pl->terminal) setup_terminal(pl);
    else if (pl->console_fd >= 0) close(pl->console_fd);
    for (size_t i = 0; i < pl->nrlims; i++) {
        struct rlimit r = { .rlim_cur = pl->rlims[i].soft, .rlim_max = pl->rlims[i].hard };
        if (setrlimit((int)pl->rlims[i].res, &r) < 0) die("setrlimit %u", pl->rlims[i].res);
    }
    /* The working directory is entered while the process still has every capability (a
     * directory only CAP_DAC_OVERRIDE opens works for a user 0 without it, as with runc); only
     * when that is refused is it tried again as the process's own user, for a directory the
     * container user may enter but root may not (root squashed by NFS, say). */
    int cwd_later = 0;
    if (pl->cwd && chdir(pl->cwd) < 0) {
        if (errno != EACCES && errno != EPERM) die("chdir %s", pl->cwd);
        cwd_later = 1;
    }
    char *exe = resolve_exe(pl);
    /* Before seccomp, which may allow only some personas. */
    if (pl->has_persona && personality(pl->persona) < 0) die("personality 0x%x", pl->persona);
    if (!pl->nnp) load_seccomp(pl);
    set_credentials(pl);
    if (cwd_later && chdir(pl->cwd) < 0) die("chdir %s", pl->cwd);
    if (pl->has_umask) umask(pl->umask_v);
    if (pl->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("set no_new_privs");
    /* The listener goes to the runtime over the init socket, closed after READY: a filter
     * with one is loaded now, before the wait for `start` (as runc 1.1 does), not just before exec. */
    if (pl->nnp && pl->seccomp_notify) load_seccomp(pl);

    trace("ready");
    reply(CR_REPLY_READY, NULL, 0);
    uint32_t slen = 0;
    char *state = wait_ack(&slen);
    close(g_sock);
    g_sock = -1;

    if (fifo >= 0) {
        char b;
        for (;;) {
            ssize_t r = read(fifo, &b, 1);
            if (r == 1) break;
            if (r < 0 && errno == EINTR) continue;
            _exit(127);
        }
        /* Kept open (close-on-exec): `start` waits for it to go away before poststart. */
    }
    if (pl->nhooks) run_hooks(pl, state, slen);
    if (pl->nnp) load_seccomp(pl);
    if (!pl->env.v) strv_push(&pl->env, NULL), pl->env.n = 0;
    exec_program(exe, pl->args.v, pl->env.v);
    dprintf(2, "dockbuild init: exec %s: %s\n", exe, strerror(errno));
    _exit(127);
}

static int ns_order(uint32_t flag) {
    /* user first so the others are joined with its privileges; mount last
     * because it changes the root for resolving later paths. */
    switch (flag) {
    case CLONE_NEWUSER: return 0;
    case CLONE_NEWNS: return 9;
    default: return 5;
    }
}

/* Descriptors the runtime's caller handed down (pipes, the socket a parent
 * watches to learn that the runtime exited) are close-on-exec by now, but the
 * container process only execs at `start`: until then it would keep them
 * open, and a caller of `create` that waits for EOF would wait for `start`.
 * Close them here, as execve would, keeping the plan's socket and console. */
static void close_inherited(int keep1, int keep2) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        int fd = atoi(e->d_name);
        if (fd < 3 || fd == self || fd == keep1 || fd == keep2) continue;
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && (fl & FD_CLOEXEC)) close(fd);
    }
    closedir(d);
}

/* ---------- bind mount sources and user namespaces ---------- */

/* In a new user namespace the container's root is an unprivileged host user: a bind mount
 * source under a directory only the host's root may enter would be refused. As runc does,
 * the sources are opened (O_PATH) by a helper that stays the host's root, inside the
 * container's new mount namespace (a bind mount's source must belong to the namespace it
 * is mounted in), and handed over as descriptors; do_mounts mounts /proc/self/fd/N.
 * The helper is forked before any namespace changes; open_bind_sources_finish tells it
 * which process's mount namespace to enter once that exists. */
static int plan_needs_bind_fds(const struct plan *pl, int userns) {
    /* An unprivileged runtime (an ordinary user's bundle with its own uid mapping) has no
     * right to enter the new mount namespace from outside it, and needs none: the container's
     * root is the same user, which opens the sources itself. */
    if (!userns || pl->mode != 1 || geteuid() != 0) return 0;
    for (size_t i = 0; i < pl->nmounts; i++)
        if (pl->mounts[i].kind == CR_MOUNT_BIND) return 1;
    return 0;
}

/* One sendmsg of `len` bytes from `buf`, with `fd` attached (SCM_RIGHTS) when fd >= 0: the one
   place descriptors are sent (console, seccomp listener, bind mount sources). */
static ssize_t send_one(int sock, int fd, const void *buf, size_t len, int flags) {
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &msg, flags);
}

/* Sends one descriptor (or, with fd < 0, the errno `err`) with a 4-byte status. */
static int send_src(int sock, int fd, int32_t err) {
    return send_one(sock, fd, &err, sizeof err, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

__attribute__((noreturn))
static void bind_source_helper(struct plan *pl, int sock) {
    g_sock = -1; /* errors go to the stage 0 process, not to the runtime */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    uint32_t pid;
    if (read_all(sock, &pid, 4) < 0) _exit(0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/ns/mnt", pid);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNS) < 0) {
        send_src(sock, -1, -(int32_t)errno); /* negative: entering the namespace failed */
        _exit(1);
    }
    for (size_t i = 0; i < pl->nmounts; i++) {
        if (pl->mounts[i].kind != CR_MOUNT_BIND) continue;
        int fd = open(pl->mounts[i].src, O_PATH | O_CLOEXEC);
        if (send_src(sock, fd, fd < 0 ? errno : 0) < 0) _exit(1);
        if (fd >= 0) close(fd);
    }
    _exit(0);
}

struct bind_helper { pid_t pid; int sock; };

static struct bind_helper open_bind_sources_start(struct plan *pl) {
    struct bind_helper h = { -1, -1 };
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) die("socketpair");
    pid_t pid = fork();
    if (pid < 0) die("fork bind mount source helper");
    if (pid == 0) { close(sp[0]); bind_source_helper(pl, sp[1]); }
    close(sp[1]);
    h.pid = pid;
    h.sock = sp[0];
    return h;
}

/* Called in stage 0 once its mount namespace exists: receives one descriptor per bind mount. */
static void open_bind_sources_finish(struct plan *pl, struct bind_helper h) {
    uint32_t self = (uint32_t)getpid();
    if (write_all(h.sock, &self, 4) < 0) die("bind mount source helper");
    for (size_t i = 0; i < pl->nmounts; i++) {
        struct mnt *m = &pl->mounts[i];
        if (m->kind != CR_MOUNT_BIND) continue;
        int32_t err = 0;
        struct iovec iov = { .iov_base = &err, .iov_len = sizeof err };
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        ssize_t r;
        while ((r = recvmsg(h.sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
        if (r != (ssize_t)sizeof err) { errno = 0; die("bind mount source helper went away"); }
        if (err < 0) { errno = -err; die("open bind mount sources in the container's mount namespace"); }
        if (err > 0) { errno = err; die("bind mount source %s", m->src); }
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (!c || c->cmsg_type != SCM_RIGHTS) { errno = 0; die("bind mount source %s: no descriptor", m->src); }
        memcpy(&m->srcfd, CMSG_DATA(c), sizeof(int));
    }
    close(h.sock);
    while (waitpid(h.pid, NULL, 0) < 0 && errno == EINTR) {}
}

__attribute__((noreturn))
static void stage0(int sock) {
    g_sock = sock;
    /* Handlers and masks inherited from the runtime must not reach the container. */
    sigset_t all;
    sigemptyset(&all);
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        signal(sig, SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, &all, NULL);
    trace("stage0");
    struct plan pl;
    read_plan(g_sock, &pl);
    trace("plan read");
    close_inherited(g_sock, pl.console_fd);
    trace("inherited fds closed");
    /* As root without a user namespace, nothing in the container may ptrace this process or
       open its /proc files (its exe is the host's binary) until it execs the container's
       program, which makes it dumpable again. (With a user namespace the parent must still
       write its id maps, as runc also allows.) */
    int userns = (pl.clone_flags & CLONE_NEWUSER) != 0;
    for (size_t i = 0; i < pl.njoins; i++)
        if (pl.joins[i].flag == CLONE_NEWUSER) userns = 1;
    if (geteuid() == 0 && !userns) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    make_trampoline();
    /* Opened before any user namespace exists: the fifo belongs to host root.
     * O_RDWR never blocks; the container process later blocks reading it. */
    int fifo = -1;
    if (pl.fifo) {
        fifo = open(pl.fifo, O_RDWR | O_CLOEXEC);
        if (fifo < 0) die("open exec fifo %s", pl.fifo);
    }

    struct bind_helper bh = { -1, -1 };
    if (plan_needs_bind_fds(&pl, userns)) bh = open_bind_sources_start(&pl);

    for (size_t i = 0; i < pl.njoins; i++) {
        pl.joins[i].fd = open(pl.joins[i].path, O_RDONLY | O_CLOEXEC);
        if (pl.joins[i].fd < 0) die("open namespace %s", pl.joins[i].path);
    }
    for (int pass = 0; pass <= 9; pass++) {
        for (size_t i = 0; i < pl.njoins; i++) {
            if (ns_order(pl.joins[i].flag) != pass) continue;
            if (setns(pl.joins[i].fd, (int)pl.joins[i].flag) < 0) die("join namespace %s", pl.joins[i].path);
            close(pl.joins[i].fd);
        }
        if (pass == 0 && (pl.clone_flags & CLONE_NEWUSER)) {
            if (unshare(CLONE_NEWUSER) < 0) die("unshare user namespace");
            if (pl.userns_maps) {
                uint32_t pid = (uint32_t)getpid();
                reply(CR_REPLY_MAPS, &pid, 4);
                free(wait_ack(NULL));
            }
            if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("become root in the user namespace");
        }
    }
    uint32_t rest = pl.clone_flags & ~(uint32_t)CLONE_NEWUSER;
    if (rest && unshare((int)rest) < 0) die("unshare namespaces 0x%x", rest);
    /* A new time namespace takes its offsets now: after unshare (they belong
     * to the namespace our children enter) and before a process enters it. */
    if (pl.time_offsets && pl.time_offsets[0]) {
        int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (fd < 0) die("open /proc/self/timens_offsets");
        if (write_all(fd, pl.time_offsets, strlen(pl.time_offsets)) < 0) die("write time namespace offsets");
        close(fd);
    }
    trace("unshared");
    if (bh.pid > 0) open_bind_sources_finish(&pl, bh);

    /* The child waits until its pid has been reported, so replies arrive in order. */
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) < 0) die("pipe");
    pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (child < 0) die("clone container process");
    if (child == 0) {
        close(gate[1]);
        char b;
        while (read(gate[0], &b, 1) < 0 && errno == EINTR) {}
        close(gate[0]);
        container_process(&pl, fifo);
    }
    if (fifo >= 0) close(fifo);
    uint32_t cp = (uint32_t)child;
    reply(CR_REPLY_PID, &cp, 4);
    _exit(0);
}

__attribute__((constructor))
static void cruntime_entry(void) {
    const char *e = getenv(CRUNTIME_INIT_ENV);
    if (!e || !*e) return;
    int sock = atoi(e);
    unsetenv(CRUNTIME_INIT_ENV);
    stage0(sock);
}

pid_t cruntime_fork_init(int sock, int other, int npreserve, int in, int out, int err) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (other >= 0) close(other);
    int io[3] = { in, out, err };
    for (int i = 0; i < 3; i++)
        if (io[i] >= 0 && io[i] != i && dup2(io[i], i) < 0) _exit(125);
    /* Child of a (maybe multi-threaded) runtime: only this thread exists now.
     * fds keep their numbers; the preserved ones (3..) must survive execve. */
    /* Other threads of the runtime may have opened fds without O_CLOEXEC:
     * none of them may reach the container process. */
    close_range(3 + (unsigned)npreserve, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 0; i < npreserve; i++) fcntl(3 + i, F_SETFD, 0);
    stage0(sock);
}

static volatile pid_t g_forward_pid;

static void forward_handler(int sig) {
    if (g_forward_pid > 0) kill(g_forward_pid, sig);
}

void cruntime_forward_signals(pid_t pid) {
    static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM };
    g_forward_pid = pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pid > 0 ? forward_handler : SIG_DFL;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

/* ---------- helpers for Swift ---------- */

int cruntime_send_fd(int sock, int fd) {
    char dummy = 'F';
    return send_one(sock, fd, &dummy, 1, 0) < 0 ? -1 : 0;
}

int cruntime_send_fd_with(int sock, int fd, const void *buf, size_t len) {
    const char *p = buf;
    int attached = 0;
    while (len > 0 || !attached) {
        ssize_t n = send_one(sock, attached ? -1 : fd, p, len, MSG_NOSIGNAL);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        attached = 1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cruntime_recv_fd(int sock) {
    char dummy;
    struct iovec iov = { .iov_base = &dummy, .iov_len = 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

int cruntime_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int cruntime_prctl_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int cruntime_memfd(const char *name) { return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC); }

int cruntime_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cruntime_socketpair_cloexec(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }

pid_t cruntime_spawn_in_ns(pid_t target, const char *path, char *const argv[], char *const envp[], int stdin_fd) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* The hook's path resolves in the runtime's namespace (opened before
     * joining), the hook itself runs in the container's namespaces. */
    int exe = open(path, O_RDONLY);
    if (exe < 0) { dprintf(2, "hook %s: %s\n", path, strerror(errno)); _exit(127); }
    static const char *names[] = { "user", "ipc", "uts", "net", "cgroup", "time", "mnt" };
    enum { NNS = sizeof names / sizeof names[0] };
    int fds[NNS];
    for (int i = 0; i < NNS; i++) {
        char p[64], q[64];
        snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)target, names[i]);
        snprintf(q, sizeof q, "/proc/self/ns/%s", names[i]);
        struct stat a, b;
        fds[i] = -1;
        if (stat(p, &a) == 0 && stat(q, &b) == 0 && (a.st_ino != b.st_ino || a.st_dev != b.st_dev))
            fds[i] = open(p, O_RDONLY | O_CLOEXEC);
    }
    for (int i = 0; i < NNS; i++) {
        if (fds[i] < 0) continue;
        if (setns(fds[i], 0) < 0) { dprintf(2, "hook %s: join %s namespace: %s\n", path, names[i], strerror(errno)); _exit(127); }
        close(fds[i]);
    }
    if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fexecve(exe, argv, envp);
    dprintf(2, "hook %s: %s\n", path, strerror(errno));
    _exit(127);
}

long cruntime_getxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)getxattr(path, name, value, size);
}
