#ifndef CTLS_SHIM_H
#define CTLS_SHIM_H
/* OpenSSL's libssl for the registry server's HTTPS. Macros Swift cannot call are wrapped. */
#include <openssl/ssl.h>
#include <openssl/err.h>

static inline int ctls_ctx_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}
static inline long ctls_ctx_set_modes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_AUTO_RETRY | SSL_MODE_RELEASE_BUFFERS);
}
static inline int ctls_filetype_pem(void) { return SSL_FILETYPE_PEM; }
#endif
