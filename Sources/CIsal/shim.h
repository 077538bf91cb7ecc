#ifndef CIsal_SHIM_H
#define CIsal_SHIM_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/igzip_lib.h>
#include <isa-l/crc.h>

/* ISA-L's stream structs are large; Swift only sees opaque pointers to these. */

typedef struct dockbuild_isal_deflater {
    struct isal_zstream stream;
    uint8_t *level_buf;
} dockbuild_isal_deflater;

static inline void *dockbuild_isal_deflater_new(int level) {
    dockbuild_isal_deflater *d = (dockbuild_isal_deflater *)calloc(1, sizeof(*d));
    if (!d) return NULL;
    uint32_t size = 0;
    switch (level) {
    case 0: size = ISAL_DEF_LVL0_DEFAULT; break;
    case 1: size = ISAL_DEF_LVL1_DEFAULT; break;
    case 2: size = ISAL_DEF_LVL2_DEFAULT; break;
    default: level = 3; size = ISAL_DEF_LVL3_DEFAULT; break;
    }
    isal_deflate_init(&d->stream);
    if (size > 0) {
        d->level_buf = (uint8_t *)malloc(size);
        if (!d->level_buf) { free(d); return NULL; }
    }
    d->stream.level = (uint32_t)level;
    d->stream.level_buf = d->level_buf;
    d->stream.level_buf_size = size;
    return d;
}

static inline void dockbuild_isal_deflater_free(void *h) {
    dockbuild_isal_deflater *d = (dockbuild_isal_deflater *)h;
    if (!d) return;
    free(d->level_buf);
    free(d);
}

/* Compresses `in` as raw deflate that continues `dict` (the previous 32 KiB of input, may be empty)
 * and ends byte-aligned (sync flush), or with the final block when `last`.
 * Returns the number of bytes written to `out`, -1 when `out` is too small, -2 on error. */
static inline long dockbuild_isal_deflate_block(void *h, const uint8_t *dict, uint32_t dict_len,
                                                const uint8_t *in, uint32_t in_len, int last,
                                                uint8_t *out, uint32_t out_cap) {
    dockbuild_isal_deflater *d = (dockbuild_isal_deflater *)h;
    struct isal_zstream *s = &d->stream;
    isal_deflate_reset(s);
    s->gzip_flag = 0;
    s->hist_bits = 0;
    if (dict_len > 0 && isal_deflate_set_dict(s, (uint8_t *)dict, dict_len) != COMP_OK) return -2;
    s->next_in = (uint8_t *)in;
    s->avail_in = in_len;
    s->next_out = out;
    s->avail_out = out_cap;
    s->end_of_stream = last ? 1 : 0;
    s->flush = last ? NO_FLUSH : SYNC_FLUSH;
    for (int i = 0; i < 64; i++) {
        int rc = isal_deflate(s);
        if (rc != COMP_OK) return -2;
        if (s->avail_in == 0) {
            if (last && s->internal_state.state == ZSTATE_END) return (long)(out_cap - s->avail_out);
            if (!last && s->internal_state.state == ZSTATE_NEW_HDR) return (long)(out_cap - s->avail_out);
        }
        if (s->avail_out == 0) return -1;
    }
    return -1;
}

typedef struct dockbuild_isal_inflater {
    struct inflate_state state;
} dockbuild_isal_inflater;

static inline void *dockbuild_isal_inflater_new(void) {
    dockbuild_isal_inflater *d = (dockbuild_isal_inflater *)calloc(1, sizeof(*d));
    if (!d) return NULL;
    isal_inflate_init(&d->state);
    d->state.crc_flag = ISAL_GZIP;
    return d;
}

static inline void dockbuild_isal_inflater_free(void *h) { free(h); }

/* Starts a new gzip member. */
static inline void dockbuild_isal_inflater_reset(void *h) {
    dockbuild_isal_inflater *d = (dockbuild_isal_inflater *)h;
    isal_inflate_reset(&d->state);
    d->state.crc_flag = ISAL_GZIP;
}

/* One inflate step. On return *in_used and *out_made say how far it went; *member_done is set when
 * the gzip member (trailer included, checksum verified) has ended. Returns 0 or a negative ISA-L error. */
static inline int dockbuild_isal_inflate(void *h, const uint8_t *in, uint32_t in_len, uint32_t *in_used,
                                         uint8_t *out, uint32_t out_cap, uint32_t *out_made, int *member_done) {
    dockbuild_isal_inflater *d = (dockbuild_isal_inflater *)h;
    struct inflate_state *s = &d->state;
    s->next_in = (uint8_t *)in;
    s->avail_in = in_len;
    s->next_out = out;
    s->avail_out = out_cap;
    int rc = isal_inflate(s);
    *in_used = in_len - s->avail_in;
    *out_made = out_cap - s->avail_out;
    *member_done = (s->block_state == ISAL_BLOCK_FINISH) ? 1 : 0;
    if (rc < 0) return rc;
    return 0;
}

static inline uint32_t dockbuild_crc32_gzip(uint32_t crc, const uint8_t *buf, uint64_t len) {
    return crc32_gzip_refl(crc, buf, len);
}
#endif
