/*
 * cgroup v2 device rules: linux.resources.devices compiled into a
 * BPF_PROG_TYPE_CGROUP_DEVICE program and attached to the container's cgroup
 * (cgroup v2 has no devices.allow file; the kernel asks attached programs).
 *
 * The program is written as raw instructions (no libbpf). The rules are
 * emitted last to first, so the first block that matches is the last rule
 * of the list that matches: the last matching rule decides, as with runc.
 * A request that no rule matches gets the default answer.
 */
#define _GNU_SOURCE
#include "cruntime.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEVFILTER_NAME "dockbuild_dev"

static long sys_bpf(int cmd, union bpf_attr *attr) {
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static void seterr(char *err, size_t errsz, const char *fmt, ...) {
    if (!err || !errsz) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* Instruction builders. */
static struct bpf_insn ins(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    struct bpf_insn i;
    memset(&i, 0, sizeof i);
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

/* Registers after the prologue. */
enum { R0 = 0, R1 = 1, R2_TYPE = 2, R3_ACCESS = 3, R4_MAJOR = 4, R5_MINOR = 5 };

static int fits(int64_t v) { return v >= 0 && v <= 0x7fffffff; }

long cruntime_devfilter_program(const struct cr_dev_rule *rules, size_t n, int default_allow,
                                void *out, size_t cap) {
    struct bpf_insn *p = out;
    size_t len = 0;
#define EMIT(x) do { if (len < cap && p) p[len] = (x); len++; } while (0)
    /* Prologue: unpack struct bpf_cgroup_dev_ctx { access_type, major, minor }. */
    EMIT(ins(BPF_LDX | BPF_MEM | BPF_W, R2_TYPE, R1, 0, 0));
    EMIT(ins(BPF_ALU | BPF_MOV | BPF_X, R3_ACCESS, R2_TYPE, 0, 0));
    EMIT(ins(BPF_ALU | BPF_RSH | BPF_K, R3_ACCESS, 0, 0, 16));
    EMIT(ins(BPF_ALU | BPF_AND | BPF_K, R2_TYPE, 0, 0, 0xffff));
    EMIT(ins(BPF_LDX | BPF_MEM | BPF_W, R4_MAJOR, R1, 4, 0));
    EMIT(ins(BPF_LDX | BPF_MEM | BPF_W, R5_MINOR, R1, 8, 0));

    for (size_t k = n; k-- > 0;) {
        const struct cr_dev_rule *r = &rules[k];
        /* A number no device can have never matches: the rule is dropped. */
        if ((r->major != -1 && !fits(r->major)) || (r->minor != -1 && !fits(r->minor))) continue;
        uint8_t acc = r->access & (CR_DEV_MKNOD | CR_DEV_READ | CR_DEV_WRITE);
        if (!acc) continue;
        size_t jumps[8];
        size_t nj = 0;
        if (r->type == 'b' || r->type == 'c') {
            jumps[nj++] = len;
            EMIT(ins(BPF_JMP | BPF_JNE | BPF_K, R2_TYPE, 0, 0,
                     r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
        }
        if (r->major != -1) {
            jumps[nj++] = len;
            EMIT(ins(BPF_JMP | BPF_JNE | BPF_K, R4_MAJOR, 0, 0, (int32_t)r->major));
        }
        if (r->minor != -1) {
            jumps[nj++] = len;
            EMIT(ins(BPF_JMP | BPF_JNE | BPF_K, R5_MINOR, 0, 0, (int32_t)r->minor));
        }
        if (acc != (CR_DEV_MKNOD | CR_DEV_READ | CR_DEV_WRITE)) {
            EMIT(ins(BPF_ALU | BPF_MOV | BPF_X, R1, R3_ACCESS, 0, 0));
            EMIT(ins(BPF_ALU | BPF_AND | BPF_K, R1, 0, 0, acc));
            jumps[nj++] = len;
            if (r->allow)
                /* An allow rule covers a request only when it grants every bit asked for. */
                EMIT(ins(BPF_JMP | BPF_JNE | BPF_X, R1, R3_ACCESS, 0, 0));
            else
                /* A deny rule refuses any request that asks for one of its bits. */
                EMIT(ins(BPF_JMP | BPF_JEQ | BPF_K, R1, 0, 0, 0));
        }
        EMIT(ins(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, r->allow ? 1 : 0));
        EMIT(ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
        /* Every "no match" jump lands on the next block. */
        for (size_t j = 0; j < nj; j++)
            if (p && jumps[j] < cap) p[jumps[j]].off = (int16_t)(len - jumps[j] - 1);
    }
    EMIT(ins(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, default_allow ? 1 : 0));
    EMIT(ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
#undef EMIT
    return (long)len;
}

/* Ids of the programs attached to `cgfd` for devices; returns the count or -1. */
static int query(int cgfd, uint32_t *ids, uint32_t cap) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.query.target_fd = (uint32_t)cgfd;
    a.query.attach_type = BPF_CGROUP_DEVICE;
    a.query.prog_ids = (uint64_t)(uintptr_t)ids;
    a.query.prog_cnt = cap;
    if (sys_bpf(BPF_PROG_QUERY, &a) < 0) return -1;
    return (int)(a.query.prog_cnt < cap ? a.query.prog_cnt : cap);
}

static int prog_fd_by_id(uint32_t id) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_id = id;
    return (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
}

static int is_ours(int fd) {
    struct bpf_prog_info info;
    memset(&info, 0, sizeof info);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.info.bpf_fd = (uint32_t)fd;
    a.info.info_len = sizeof info;
    a.info.info = (uint64_t)(uintptr_t)&info;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0) return 0;
    return strncmp(info.name, DEVFILTER_NAME, sizeof info.name) == 0;
}

int cruntime_devfilter_count(int cgfd) {
    uint32_t ids[64];
    int n = query(cgfd, ids, 64);
    if (n < 0) return -1;
    int ours = 0;
    for (int i = 0; i < n; i++) {
        int fd = prog_fd_by_id(ids[i]);
        if (fd < 0) continue;
        ours += is_ours(fd);
        close(fd);
    }
    return ours;
}

int cruntime_devfilter_apply(int cgfd, const struct cr_dev_rule *rules, size_t n, int default_allow,
                             char *err, size_t errsz) {
    long count = cruntime_devfilter_program(rules, n, default_allow, NULL, 0);
    if (count > 1000000) { seterr(err, errsz, "%zu device rules make a program of %ld instructions, more than the kernel loads", n, count); errno = E2BIG; return -1; }
    struct bpf_insn *prog = calloc((size_t)count, sizeof *prog);
    if (!prog) { seterr(err, errsz, "out of memory"); return -1; }
    cruntime_devfilter_program(rules, n, default_allow, prog, (size_t)count);

    /* Older programs of ours, replaced once the new one is in place. */
    uint32_t old[64];
    int nold = query(cgfd, old, 64);
    if (nold < 0) {
        int e = errno;
        free(prog);
        seterr(err, errsz, "query device programs of the cgroup: %s (a kernel without CONFIG_CGROUP_BPF cannot enforce device rules on cgroup v2)", strerror(e));
        errno = e;
        return -1;
    }

    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)prog;
    a.insn_cnt = (uint32_t)count;
    a.license = (uint64_t)(uintptr_t)"Apache";
    memcpy(a.prog_name, DEVFILTER_NAME, sizeof DEVFILTER_NAME);
    int pfd = (int)sys_bpf(BPF_PROG_LOAD, &a);
    if (pfd < 0) {
        /* Load again with a log buffer so the error can say what the verifier saw. */
        int e = errno;
        const size_t logsz = 1 << 16;
        char *vlog = calloc(1, logsz);
        if (vlog) {
            a.log_buf = (uint64_t)(uintptr_t)vlog;
            a.log_size = (uint32_t)logsz;
            a.log_level = 1;
            pfd = (int)sys_bpf(BPF_PROG_LOAD, &a);
            if (pfd < 0) e = errno;
        }
        if (pfd < 0) {
            free(prog);
            seterr(err, errsz, "load the device filter (BPF_PROG_LOAD): %s%s%s", strerror(e),
                   vlog && vlog[0] ? "; verifier log:\n" : "", vlog ? vlog : "");
            free(vlog);
            errno = e;
            return -1;
        }
        free(vlog);
    }
    free(prog);

    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)cgfd;
    a.attach_bpf_fd = (uint32_t)pfd;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) {
        int e = errno;
        close(pfd);
        seterr(err, errsz, "attach the device filter to the cgroup (BPF_PROG_ATTACH): %s", strerror(e));
        errno = e;
        return -1;
    }
    close(pfd);  /* the attachment keeps the program alive */

    for (int i = 0; i < nold; i++) {
        int fd = prog_fd_by_id(old[i]);
        if (fd < 0) continue;
        if (is_ours(fd)) {
            memset(&a, 0, sizeof a);
            a.target_fd = (uint32_t)cgfd;
            a.attach_bpf_fd = (uint32_t)fd;
            a.attach_type = BPF_CGROUP_DEVICE;
            if (sys_bpf(BPF_PROG_DETACH, &a) < 0 && errno != ENOENT) {
                int e = errno;
                close(fd);
                seterr(err, errsz, "detach the previous device filter (program id %u): %s", old[i], strerror(e));
                errno = e;
                return -1;
            }
        }
        close(fd);
    }
    return 0;
}
