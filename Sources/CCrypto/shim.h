#ifndef CCrypto_SHIM_H
#define CCrypto_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/rand.h>

/* SHA-256/512 without the EVP layer, for Digest.Hasher: the first EVP digest of a process
   loads OpenSSL 3's default provider (~5M instructions, a third of a short command such as
   `dockbuild images`); these one-shot algorithm functions are the same code without it.
   They are deprecated in OpenSSL 3 only in favour of EVP. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline int ccrypto_sha256_init(SHA256_CTX *c) { return SHA256_Init(c); }
static inline int ccrypto_sha256_update(SHA256_CTX *c, const void *p, size_t n) { return SHA256_Update(c, p, n); }
static inline int ccrypto_sha256_final(unsigned char *out, SHA256_CTX *c) { return SHA256_Final(out, c); }
static inline int ccrypto_sha512_init(SHA512_CTX *c) { return SHA512_Init(c); }
static inline int ccrypto_sha512_update(SHA512_CTX *c, const void *p, size_t n) { return SHA512_Update(c, p, n); }
static inline int ccrypto_sha512_final(unsigned char *out, SHA512_CTX *c) { return SHA512_Final(out, c); }
#pragma clang diagnostic pop
#endif
