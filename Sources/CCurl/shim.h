#ifndef CCurl_SHIM_H
#define CCurl_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call:
   one typed wrapper per argument kind. */

static inline CURLcode dockbuild_curl_setopt_long(CURL *h, CURLoption o, long v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_string(CURL *h, CURLoption o, const char *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode dockbuild_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return curl_easy_setopt(h, o, v);
}

typedef size_t (*dockbuild_curl_io_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*dockbuild_curl_seek_cb)(void *userdata, curl_off_t offset, int origin);
typedef int (*dockbuild_curl_xferinfo_cb)(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode dockbuild_curl_setopt_io(CURL *h, CURLoption o, dockbuild_curl_io_cb cb) {
    return curl_easy_setopt(h, o, cb);
}
static inline CURLcode dockbuild_curl_setopt_seek(CURL *h, CURLoption o, dockbuild_curl_seek_cb cb) {
    return curl_easy_setopt(h, o, cb);
}

static inline CURLcode dockbuild_curl_setopt_xferinfo(CURL *h, dockbuild_curl_xferinfo_cb cb) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cb);
}

static inline CURLcode dockbuild_curl_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode dockbuild_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode dockbuild_curl_getinfo_string(CURL *h, CURLINFO i, char **v) {
    return curl_easy_getinfo(h, i, v);
}
#endif
