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

/* Whether `leaf` chains to a certificate in `store` through the `count` intermediates (the
   rest of a token's x5c header), with every certificate within its validity period.
   Returns 1 when it does. */
static inline int ctls_verify_chain(X509_STORE *store, X509 *leaf, X509 **intermediates, int count) {
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (!untrusted) return 0;
    for (int i = 0; i < count; i++) sk_X509_push(untrusted, intermediates[i]);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = ctx && X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1 && X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    return ok;
}
#endif
