#include "ccurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static dockbuild_curl_api api;
static int loaded;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define SYM(field, name)                                                                     \
    do {                                                                                     \
        *(void **)(&api.field) = dlsym(lib, name);                                           \
        if (!api.field) {                                                                    \
            snprintf(load_error, sizeof load_error, "%s lacks %s: install Debian's libcurl4", \
                     soname, name);                                                          \
            return;                                                                          \
        }                                                                                    \
    } while (0)

static void load(void) {
    const char *soname = "libcurl.so.4";
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        soname = "libcurl.so";
        lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib) {
        snprintf(load_error, sizeof load_error,
                 "cannot load libcurl (%s): install Debian's libcurl4 (apt-get install libcurl4)", dlerror());
        return;
    }
    SYM(global_init, "curl_global_init");
    SYM(easy_init, "curl_easy_init");
    SYM(easy_cleanup, "curl_easy_cleanup");
    SYM(easy_reset, "curl_easy_reset");
    SYM(easy_perform, "curl_easy_perform");
    SYM(easy_strerror, "curl_easy_strerror");
    SYM(easy_setopt, "curl_easy_setopt");
    SYM(easy_getinfo, "curl_easy_getinfo");
    SYM(slist_append, "curl_slist_append");
    SYM(slist_free_all, "curl_slist_free_all");
    if (api.global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        return;
    }
    loaded = 1;
}

const dockbuild_curl_api *dockbuild_curl(void) {
    pthread_once(&once, load);
    return loaded ? &api : NULL;
}

const dockbuild_curl_api *dockbuild_curl_loaded(void) { return &api; }

const char *dockbuild_curl_error(void) {
    pthread_once(&once, load);
    return loaded ? "" : load_error;
}
