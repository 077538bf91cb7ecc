#ifndef CArchive_SHIM_H
#define CArchive_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>

/* libarchive is loaded with dlopen on first use (loader.c defines the archive_* functions
 * dockbuild calls and forwards them): linked, it brings eight more shared libraries (libxml2,
 * ICU, nettle, acl, lzma, lz4, bz2) into every start of the dockbuild binary, whose dynamic
 * linking cost several milliseconds of commands that never read an archive, such as
 * `dockbuild runtime run`. archive_read_new() returns NULL when the library cannot be loaded;
 * dockbuild_archive_load_error() says why. */
const char *dockbuild_archive_load_error(void);

/* System calls the Archive module needs that Swift's Glibc module does not surface
 * (variadic syscall(2), <sys/xattr.h>). */

#ifndef RESOLVE_IN_ROOT
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct dockbuild_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

/* openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `root` were "/", so neither "..", absolute
 * symlinks nor relative ones can leave it. Returns an fd, or -1 with errno (ENOSYS on old kernels). */
static inline int dockbuild_openat_in_root(int root, const char *path, int flags, unsigned int mode) {
    struct dockbuild_open_how how;
    how.flags = (uint64_t)(unsigned int)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long rc;
    do {
        rc = syscall(SYS_openat2, root, path, &how, sizeof(how));
    } while (rc < 0 && errno == EAGAIN);
    return (int)rc;
}

static inline long dockbuild_llistxattr(const char *path, char *list, size_t size) { return (long)llistxattr(path, list, size); }
static inline long dockbuild_lgetxattr(const char *path, const char *name, void *value, size_t size) { return (long)lgetxattr(path, name, value, size); }
static inline int dockbuild_lsetxattr(const char *path, const char *name, const void *value, size_t size) { return lsetxattr(path, name, value, size, 0); }
static inline long dockbuild_flistxattr(int fd, char *list, size_t size) { return (long)flistxattr(fd, list, size); }
static inline long dockbuild_fgetxattr(int fd, const char *name, void *value, size_t size) { return (long)fgetxattr(fd, name, value, size); }
static inline int dockbuild_fsetxattr(int fd, const char *name, const void *value, size_t size) { return fsetxattr(fd, name, value, size, 0); }
static inline int dockbuild_fremovexattr(int fd, const char *name) { return fremovexattr(fd, name); }
#endif
