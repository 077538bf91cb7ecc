#ifndef CZlib_SHIM_H
#define CZlib_SHIM_H
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

/* zlib's init functions are macros; these wrappers give Swift something to call. */

static inline void *dockbuild_zlib_deflater_new(int level) {
    z_stream *s = (z_stream *)calloc(1, sizeof(z_stream));
    if (!s) return NULL;
    if (deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) { free(s); return NULL; }
    return s;
}

static inline void dockbuild_zlib_deflater_free(void *h) {
    z_stream *s = (z_stream *)h;
    if (!s) return;
    deflateEnd(s);
    free(s);
}

/* Same contract as dockbuild_isal_deflate_block, with zlib. */
static inline long dockbuild_zlib_deflate_block(void *h, const uint8_t *dict, uint32_t dict_len,
                                                const uint8_t *in, uint32_t in_len, int last,
                                                uint8_t *out, uint32_t out_cap) {
    z_stream *s = (z_stream *)h;
    if (deflateReset(s) != Z_OK) return -2;
    if (dict_len > 0 && deflateSetDictionary(s, dict, dict_len) != Z_OK) return -2;
    s->next_in = (Bytef *)in;
    s->avail_in = in_len;
    s->next_out = out;
    s->avail_out = out_cap;
    int rc = deflate(s, last ? Z_FINISH : Z_SYNC_FLUSH);
    if (last) {
        if (rc == Z_STREAM_END) return (long)(out_cap - s->avail_out);
        return rc == Z_OK || rc == Z_BUF_ERROR ? -1 : -2;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) return -2;
    if (s->avail_in != 0 || s->avail_out == 0) return -1;
    return (long)(out_cap - s->avail_out);
}

static inline uint32_t dockbuild_crc32_combine(uint32_t a, uint32_t b, int64_t len_b) {
    return (uint32_t)crc32_combine(a, b, (z_off_t)len_b);
}

static inline void *dockbuild_zlib_inflater_new(void) {
    z_stream *s = (z_stream *)calloc(1, sizeof(z_stream));
    if (!s) return NULL;
    if (inflateInit2(s, 15 + 16) != Z_OK) { free(s); return NULL; }
    return s;
}
static inline void dockbuild_zlib_inflater_free(void *h) {
    z_stream *s = (z_stream *)h;
    if (!s) return;
    inflateEnd(s);
    free(s);
}
#endif
