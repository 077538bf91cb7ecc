/* libarchive through dlopen: every archive_* function dockbuild uses is defined here with
 * libarchive's own prototype (from <archive.h>) and forwards to the library's symbol, looked
 * up once. See include/shim.h for why. */
#include "shim.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* X(return type, name, (parameters), (arguments)) for each function but archive_read_new,
   which loads the library and is written out below. */
#define ARCHIVE_FUNCTIONS(X)                                                                              \
    X(int, archive_read_free, (struct archive *a), (a))                                                  \
    X(const char *, archive_error_string, (struct archive *a), (a))                                      \
    X(int, archive_read_support_filter_all, (struct archive *a), (a))                                    \
    X(int, archive_read_support_format_tar, (struct archive *a), (a))                                    \
    X(int, archive_read_support_format_gnutar, (struct archive *a), (a))                                 \
    X(int, archive_read_support_format_raw, (struct archive *a), (a))                                    \
    X(int, archive_read_open, (struct archive *a, void *c, archive_open_callback *o, archive_read_callback *r, \
                               archive_close_callback *cl), (a, c, o, r, cl))                            \
    X(int, archive_read_open_fd, (struct archive *a, int fd, size_t bs), (a, fd, bs))                    \
    X(int, archive_read_open_filename, (struct archive *a, const char *f, size_t bs), (a, f, bs))        \
    X(int, archive_read_open_memory, (struct archive *a, const void *b, size_t n), (a, b, n))            \
    X(int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e))              \
    X(la_ssize_t, archive_read_data, (struct archive *a, void *b, size_t n), (a, b, n))                  \
    X(int, archive_read_data_block, (struct archive *a, const void **b, size_t *n, la_int64_t *o), (a, b, n, o)) \
    X(int, archive_read_data_skip, (struct archive *a), (a))                                             \
    X(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e))                               \
    X(__LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e))                                   \
    X(la_int64_t, archive_entry_uid, (struct archive_entry *e), (e))                                     \
    X(la_int64_t, archive_entry_gid, (struct archive_entry *e), (e))                                     \
    X(const char *, archive_entry_uname, (struct archive_entry *e), (e))                                 \
    X(const char *, archive_entry_pathname, (struct archive_entry *e), (e))                              \
    X(const char *, archive_entry_hardlink, (struct archive_entry *e), (e))                              \
    X(const char *, archive_entry_symlink, (struct archive_entry *e), (e))                               \
    X(la_int64_t, archive_entry_size, (struct archive_entry *e), (e))                                    \
    X(int, archive_entry_size_is_set, (struct archive_entry *e), (e))                                    \
    X(time_t, archive_entry_mtime, (struct archive_entry *e), (e))                                       \
    X(long, archive_entry_mtime_nsec, (struct archive_entry *e), (e))                                    \
    X(dev_t, archive_entry_rdevmajor, (struct archive_entry *e), (e))                                    \
    X(dev_t, archive_entry_rdevminor, (struct archive_entry *e), (e))                                    \
    X(int, archive_entry_xattr_reset, (struct archive_entry *e), (e))                                    \
    X(int, archive_entry_xattr_next, (struct archive_entry *e, const char **n, const void **v, size_t *s), (e, n, v, s))

#define POINTER(ret, name, params, args) ret(*name) params;
static struct {
    struct archive *(*archive_read_new)(void);
    ARCHIVE_FUNCTIONS(POINTER)
} api;
static int loaded;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    const char *soname = "libarchive.so.13";
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error,
                 "cannot load libarchive (%s): install Debian's libarchive13 (apt-get install libarchive13)", dlerror());
        return;
    }
#define LOOKUP(ret, name, params, args)                                                                  \
    *(void **)(&api.name) = dlsym(lib, #name);                                                           \
    if (!api.name) {                                                                                     \
        snprintf(load_error, sizeof load_error, "%s lacks %s: install Debian's libarchive13", soname, #name); \
        return;                                                                                          \
    }
    LOOKUP(struct archive *, archive_read_new, (void), ())
    ARCHIVE_FUNCTIONS(LOOKUP)
    loaded = 1;
}

const char *dockbuild_archive_load_error(void) {
    pthread_once(&once, load);
    return loaded ? NULL : load_error;
}

/* archive_read_new loads the library and reports failure as NULL; every other function takes
   an archive or an entry that only exists once it succeeded. */
struct archive *archive_read_new(void) {
    pthread_once(&once, load);
    return loaded ? api.archive_read_new() : NULL;
}

#define FORWARD(ret, name, params, args) \
    ret name params { return api.name args; }
ARCHIVE_FUNCTIONS(FORWARD)
