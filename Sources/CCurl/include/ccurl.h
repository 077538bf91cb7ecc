#ifndef CCURL_H
#define CCURL_H
/* libcurl, loaded with dlopen on first use rather than linked: curl drags ~25 shared
   libraries (TLS, Kerberos, LDAP, SSH, IDN, ...) into every start of the dockbuild binary,
   which commands such as `dockbuild runtime run` pay for and never use. The Swift side calls
   these wrappers; curl_easy_setopt/getinfo are variadic, so there is one typed wrapper per
   argument kind. */
#include <curl/curl.h>

typedef struct dockbuild_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    CURLcode (*easy_perform)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
} dockbuild_curl_api;

/* Loads libcurl (once, thread-safe) and runs curl_global_init. Returns NULL when it cannot
   be loaded; dockbuild_curl_error() then says why. */
const dockbuild_curl_api *dockbuild_curl(void);
const char *dockbuild_curl_error(void);

/* Valid only after dockbuild_curl() returned non-NULL. */
const dockbuild_curl_api *dockbuild_curl_loaded(void);

static inline CURL *dockbuild_curl_easy_init(void) {
    const dockbuild_curl_api *a = dockbuild_curl();
    return a ? a->easy_init() : NULL;
}
static inline void dockbuild_curl_easy_cleanup(CURL *h) { dockbuild_curl_loaded()->easy_cleanup(h); }
static inline void dockbuild_curl_easy_reset(CURL *h) { dockbuild_curl_loaded()->easy_reset(h); }
static inline CURLcode dockbuild_curl_easy_perform(CURL *h) { return dockbuild_curl_loaded()->easy_perform(h); }
static inline const char *dockbuild_curl_easy_strerror(CURLcode c) { return dockbuild_curl_loaded()->easy_strerror(c); }
static inline struct curl_slist *dockbuild_curl_slist_append(struct curl_slist *l, const char *s) {
    return dockbuild_curl_loaded()->slist_append(l, s);
}
static inline void dockbuild_curl_slist_free_all(struct curl_slist *l) { dockbuild_curl_loaded()->slist_free_all(l); }

static inline CURLcode dockbuild_curl_setopt_long(CURL *h, CURLoption o, long v) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_string(CURL *h, CURLoption o, const char *v) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, v);
}

typedef size_t (*dockbuild_curl_io_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*dockbuild_curl_seek_cb)(void *userdata, curl_off_t offset, int origin);
typedef int (*dockbuild_curl_xferinfo_cb)(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode dockbuild_curl_setopt_io(CURL *h, CURLoption o, dockbuild_curl_io_cb cb) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, cb);
}
static inline CURLcode dockbuild_curl_setopt_seek(CURL *h, CURLoption o, dockbuild_curl_seek_cb cb) {
    return dockbuild_curl_loaded()->easy_setopt(h, o, cb);
}
static inline CURLcode dockbuild_curl_setopt_xferinfo(CURL *h, dockbuild_curl_xferinfo_cb cb) {
    return dockbuild_curl_loaded()->easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cb);
}

static inline CURLcode dockbuild_curl_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return dockbuild_curl_loaded()->easy_getinfo(h, i, v);
}
static inline CURLcode dockbuild_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) {
    return dockbuild_curl_loaded()->easy_getinfo(h, i, v);
}
static inline CURLcode dockbuild_curl_getinfo_string(CURL *h, CURLINFO i, char **v) {
    return dockbuild_curl_loaded()->easy_getinfo(h, i, v);
}
#endif
