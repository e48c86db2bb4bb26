/*
 * A multi-core Groth16 prover for BN254 (alt_bn128) over mcl, for snarkjs .zkey proving keys.
 *
 * It computes what snarkjs' `groth16 prove` computes, so its proofs verify under the same
 * verification key: A = sum w_i A_i + alpha + r delta, B = sum w_i B2_i + beta + s delta (and
 * its G1 twin B1), C = sum_{i > nPublic} w_i C_i + sum_j h_j H_j + s A + r B1 - r s delta,
 * where h_j = (a b - c)(g w^j) on the odd coset g = w_{2N} of the N-point domain, a, b, c being
 * the polynomials through the per-constraint values of the A and B rows (c = a b pointwise).
 *
 * mcl is loaded by Python (PyPI `mclbn256`, a shared object written to a temporary file), so
 * it is not linked here: the caller hands over mcl's function pointers once (svp_set_api).
 * Scalars are mcl Fr structs (Montgomery form, R = 2^256, as snarkjs' internal form); points
 * are mcl Jacobian structs. The work runs on the caller's thread plus threads of our own (mcl's
 * own multi-threaded entry point used no second core in this build); Python calls in through
 * ctypes, which releases the GIL for the length of the call.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define FR 32
#define G1 96
#define G2 192
#define COEF_BYTES 44  /* u32 matrix, u32 constraint, u32 signal, 32-byte value (coef * R^2) */

/* error codes (Python maps them to messages) */
#define SVP_OK 0
#define SVP_ENOMEM -1
#define SVP_EWITNESS -2   /* a witness value is not below r; *bad_index says which */
#define SVP_ERANDOM -3    /* the OS CSPRNG failed */
#define SVP_ETHREAD -4
#define SVP_EAPI -5       /* svp_set_api was not called */

typedef void (*op2)(void *z, const void *x, const void *y);
typedef void (*op1)(void *y, const void *x);
typedef int (*pred)(const void *x);
typedef void (*mulvec_fn)(void *z, void *x, const void *y, size_t n);
typedef int (*fr_set_le)(void *x, const void *buf, size_t size);

/* A group as the MSM sees it: its point structs (x, y, z: Jacobian, z = 1 when affine, 0 at
 * infinity), the field of its coordinates (Fp for G1, Fp2 for G2) and mcl's point operations. */
typedef struct {
    size_t f, p;                 /* bytes of a coordinate, of a point struct (3 f) */
    op2 mul, add, sub;           /* coordinate field */
    op1 sqr, inv, neg;
    op2 padd, pmul;              /* points (pmul: by an Fr struct) */
    op1 pdbl, pneg, normalize;
    pred is_zero;
    mulvec_fn mul_vec;           /* mcl's own MSM: only to compare against in tests */
    uint8_t one[64];             /* the coordinate 1 (Montgomery form) */
} group_ops;

static struct {
    op2 fr_mul, fr_add, fr_sub;
    fr_set_le fr_set_le_mod;
    group_ops g[2];
    int ready;
} M;

/* fn, in order: Fr mul, add, sub, setLittleEndianMod; then for G1 and for G2: the point add,
 * mul, dbl, neg, normalize, isZero, mulVec, and the coordinate field's mul, add, sub, sqr, inv,
 * neg. fp_one: Fp's 1 in Montgomery form (32 bytes). */
void svp_set_api(void *const *fn, const uint8_t *fp_one)
{
    M.fr_mul = (op2)fn[0];
    M.fr_add = (op2)fn[1];
    M.fr_sub = (op2)fn[2];
    M.fr_set_le_mod = (fr_set_le)fn[3];
    for (int k = 0; k < 2; k++) {
        void *const *q = fn + 4 + 13 * k;
        group_ops *g = &M.g[k];
        g->f = k ? 64 : 32;
        g->p = 3 * g->f;
        g->padd = (op2)q[0];
        g->pmul = (op2)q[1];
        g->pdbl = (op1)q[2];
        g->pneg = (op1)q[3];
        g->normalize = (op1)q[4];
        g->is_zero = (pred)q[5];
        g->mul_vec = (mulvec_fn)q[6];
        g->mul = (op2)q[7];
        g->add = (op2)q[8];
        g->sub = (op2)q[9];
        g->sqr = (op1)q[10];
        g->inv = (op1)q[11];
        g->neg = (op1)q[12];
        memset(g->one, 0, sizeof g->one);
        memcpy(g->one, fp_one, 32);
    }
    M.ready = 1;
}

/* A loaded proving key: the point arrays belong to the caller (Python keeps them alive);
 * the FFT tables are ours (svp_key_prepare / svp_key_release). */
typedef struct {
    uint32_t n_vars, n_public, log_n, domain_size;
    uint64_t n_coefs;
    const uint8_t *coefs;
    const uint8_t *a, *b1, *b2, *c, *h;   /* c holds n_vars - n_public - 1 points */
    uint8_t alpha1[G1], beta1[G1], delta1[G1];
    uint8_t beta2[G2], delta2[G2];
    uint8_t omega[FR], omega_inv[FR], coset[FR], n_inv[FR], mont_r2[FR], one[FR];
    uint8_t *tw, *tw_inv, *coset_scale;   /* w^k, w^-k (k < N/2); g^i / N (i < N) */
} svp_key;

static const uint8_t R_LE[FR] = {   /* the scalar field order r, little endian */
    0x01, 0x00, 0x00, 0xf0, 0x93, 0xf5, 0xe1, 0x43, 0x91, 0x70, 0xb9, 0x79, 0x48, 0xe8, 0x33, 0x28,
    0x5d, 0x58, 0x81, 0x81, 0xb6, 0x45, 0x50, 0xb8, 0x29, 0xa0, 0x31, 0xe1, 0x72, 0x4e, 0x64, 0x30};

static int below_r(const uint8_t *x)
{
    for (int i = FR - 1; i >= 0; i--)
        if (x[i] != R_LE[i]) return x[i] < R_LE[i];
    return 0;
}

/* ---- a tiny task pool: `threads` workers (the caller is one) pull task indices ---- */

typedef int (*task_fn)(void *ctx, size_t task);
typedef struct {
    task_fn fn;
    void *ctx;
    size_t n_tasks;
    atomic_size_t next;
    atomic_int err;
} pool;

static void *pool_worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        size_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->n_tasks || atomic_load(&p->err)) break;
        int rc = p->fn(p->ctx, t);
        if (rc) atomic_store(&p->err, rc);
    }
    return NULL;
}

static int run_pool(int threads, size_t n_tasks, task_fn fn, void *ctx)
{
    pool p = {fn, ctx, n_tasks, 0, 0};
    if (!n_tasks) return SVP_OK;
    int extra = (size_t)threads - 1 < n_tasks - 1 ? threads - 1 : (int)(n_tasks - 1);
    pthread_t *tid = extra > 0 ? malloc(sizeof(pthread_t) * extra) : NULL;
    if (extra > 0 && !tid) return SVP_ENOMEM;
    int started = 0;
    for (; started < extra; started++)
        if (pthread_create(&tid[started], NULL, pool_worker, &p)) break;
    pool_worker(&p);
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    free(tid);
    if (atomic_load(&p.err)) return atomic_load(&p.err);
    return started < extra ? SVP_ETHREAD : SVP_OK;
}

/* ---- FFT over Fr (radix 2, in place) ---- */

static void bit_reverse(uint8_t *a, uint32_t log_n)
{
    size_t n = (size_t)1 << log_n;
    uint8_t t[FR];
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        for (uint32_t b = 0; b < log_n; b++) j |= ((i >> b) & 1) << (log_n - 1 - b);
        if (i < j) {
            memcpy(t, a + i * FR, FR);
            memcpy(a + i * FR, a + j * FR, FR);
            memcpy(a + j * FR, t, FR);
        }
    }
}

/* a_i <- sum_j a_j w^(ij), tw[k] = w^k for k < N/2 */
static void fft(uint8_t *a, uint32_t log_n, const uint8_t *tw)
{
    size_t n = (size_t)1 << log_n;
    uint8_t v[FR], u[FR];
    bit_reverse(a, log_n);
    for (size_t len = 2; len <= n; len <<= 1) {
        size_t half = len >> 1, step = n / len;
        for (size_t i = 0; i < n; i += len) {
            for (size_t j = 0; j < half; j++) {
                uint8_t *x = a + (i + j) * FR, *y = a + (i + j + half) * FR;
                if (j) M.fr_mul(v, y, tw + j * step * FR);
                else memcpy(v, y, FR);
                memcpy(u, x, FR);
                M.fr_add(x, u, v);
                M.fr_sub(y, u, v);
            }
        }
    }
}

static void powers(uint8_t *out, const uint8_t *first, const uint8_t *x, size_t n)
{
    if (!n) return;
    memcpy(out, first, FR);
    for (size_t i = 1; i < n; i++) M.fr_mul(out + i * FR, out + (i - 1) * FR, x);
}

/* The FFT tables of a key, once per key. */
int svp_key_prepare(svp_key *k)
{
    size_t n = k->domain_size, half = n > 1 ? n / 2 : 1;
    if (!M.ready) return SVP_EAPI;
    k->tw = malloc(half * FR);
    k->tw_inv = malloc(half * FR);
    k->coset_scale = malloc(n * FR);
    if (!k->tw || !k->tw_inv || !k->coset_scale) {
        free(k->tw); free(k->tw_inv); free(k->coset_scale);
        k->tw = k->tw_inv = k->coset_scale = NULL;
        return SVP_ENOMEM;
    }
    powers(k->tw, k->one, k->omega, half);
    powers(k->tw_inv, k->one, k->omega_inv, half);
    powers(k->coset_scale, k->n_inv, k->coset, n);
    return SVP_OK;
}

void svp_key_release(svp_key *k)
{
    free(k->tw); free(k->tw_inv); free(k->coset_scale);
    k->tw = k->tw_inv = k->coset_scale = NULL;
}

/* ---- one proof ---- */

/* ---- multi-exponentiation: Pippenger with signed digits and affine buckets ----
 *
 * Scalars are recoded once into signed window digits d (|d| <= 2^(c-1)), so a window needs
 * 2^(c-1) buckets and a negative digit adds the negated point (free in affine form). A bucket
 * is kept in affine form and a batch of bucket additions, each to a different bucket, shares
 * one field inversion (Montgomery's trick): about 6 field multiplications an addition instead
 * of a mixed Jacobian addition's 11. A point whose bucket is already in the batch goes to that
 * bucket's Jacobian overflow sum instead of waiting: hot buckets (the ones of a witness, the
 * few buckets of a short top window) never stall the batches. The windows of an MSM are
 * independent tasks, so every core works on the whole point set with the widest window. */

typedef int16_t wdigit;           /* c <= MAX_WINDOW keeps |d| and -d inside int16 */
#define MIN_WINDOW 2
#define MAX_WINDOW 15
#define BATCH 256
/* a bucket-sum addition costs about this many batched affine additions (measured with mcl on
 * the development machine: a mixed addition 0.27 us, a Jacobian one 0.38 us, a batched affine
 * one ~0.14 us) */
#define JACOBIAN_OVER_AFFINE 2.3

static inline uint32_t bits_at(const uint64_t *s, int off, int c)
{
    int limb = off >> 6, sh = off & 63;
    if (limb >= 4) return 0;
    uint64_t v = s[limb] >> sh;
    if (sh + c > 64 && limb < 3) v |= s[limb + 1] << (64 - sh);
    return (uint32_t)(v & ((1u << c) - 1));
}

static int bit_length(const uint64_t *v)
{
    for (int i = 3; i >= 0; i--)
        if (v[i]) return 64 * i + 64 - __builtin_clzll(v[i]);
    return 0;
}

/* The shorter of v and r - v for a standard-form scalar v below r; *negate says which. */
static void shorter_form(const uint8_t *std, uint64_t *used, int *negate)
{
    uint64_t v[4], r[4], d[4];
    memcpy(v, std, FR);
    memcpy(r, R_LE, FR);
    unsigned __int128 borrow = 0;
    for (int i = 0; i < 4; i++) {
        unsigned __int128 t = (unsigned __int128)r[i] - v[i] - (uint64_t)borrow;
        d[i] = (uint64_t)t;
        borrow = (t >> 64) ? 1 : 0;
    }
    *negate = bit_length(d) < bit_length(v);
    memcpy(used, *negate ? d : v, FR);
}

/* The W signed digits of u (W c > bit length of u), negated if `negate`, at out[w * stride]:
 * d_w in (-2^(c-1), 2^(c-1)] with sum d_w 2^(c w) = u. */
static void recode(const uint64_t *u, int negate, int c, int windows, wdigit *out, size_t stride)
{
    const uint32_t half = 1u << (c - 1), full = 1u << c;
    uint32_t carry = 0;
    for (int w = 0; w < windows; w++) {
        uint32_t raw = bits_at(u, w * c, c) + carry;
        int d = raw > half ? (int)raw - (int)full : (int)raw;
        carry = raw > half;
        out[(size_t)w * stride] = (wdigit)(negate ? -d : d);
    }
}

static int windows_for(int bits, int c)
{
    return bits / c + 1;           /* W c > bits: the top digit never carries out */
}

/* The window width *c minimising (digit additions + bucket sums) over the windows, and how
 * many windows it takes (*windows), from the bit lengths' histogram hist[1..256]. */
static void plan_windows(const size_t *hist, int *c, int *windows)
{
    int top = 0;
    double best_cost = 0;
    for (int b = 1; b <= 256; b++)
        if (hist[b]) top = b;
    *c = MIN_WINDOW;
    for (int w = MIN_WINDOW; w <= MAX_WINDOW; w++) {
        double cost = (double)windows_for(top, w) * JACOBIAN_OVER_AFFINE * 2 * (double)(1u << (w - 1));
        for (int b = 1; b <= top; b++) cost += (double)hist[b] * windows_for(b, w);
        if (w == MIN_WINDOW || cost < best_cost) { *c = w; best_cost = cost; }
    }
    *windows = windows_for(top, *c);
}

/* One MSM: sum over list entries e of scalar[e + offset] * points[e]. */
typedef struct {
    const group_ops *g;
    const uint8_t *points;
    const uint32_t *list;     /* points to sum: finite, nonzero scalar */
    size_t n_list;
    const wdigit *digits;      /* window-major: digits[w * stride + e + offset] */
    size_t stride, offset;
    int c, windows;
    uint8_t *window_sums;     /* one point struct per window */
} msm_job;

typedef struct {
    const group_ops *g;
    size_t nb;
    uint8_t *bx, *by;         /* affine bucket coordinates */
    uint8_t *has;             /* the bucket holds an affine point */
    uint32_t *mark;           /* the batch that last claimed the bucket */
    uint8_t *ovf;             /* Jacobian overflow sums (zero = empty) */
    uint8_t *ovf_has;
    /* the batch */
    uint32_t bk[BATCH];
    const uint8_t *pt[BATCH];
    uint8_t neg[BATCH], special[BATCH];
    uint8_t *diff, *pre;      /* BATCH coordinates each */
    int m;
} buckets;

static void *buckets_alloc(buckets *k, const group_ops *g, size_t nb)
{
    const size_t f = g->f;
    size_t bytes = nb * (2 * f + g->p + 2 + sizeof(uint32_t)) + 2 * BATCH * f;
    uint8_t *mem = calloc(1, bytes);
    if (!mem) return NULL;
    memset(k, 0, sizeof *k);
    k->g = g;
    k->nb = nb;
    k->mark = (uint32_t *)mem;
    k->bx = mem + nb * sizeof(uint32_t);
    k->by = k->bx + nb * f;
    k->ovf = k->by + nb * f;
    k->diff = k->ovf + nb * g->p;
    k->pre = k->diff + BATCH * f;
    k->has = k->pre + BATCH * f;
    k->ovf_has = k->has + nb;
    return mem;
}

static int is_zero_coord(const uint8_t *x, size_t f)
{
    static const uint8_t zero[64];
    return !memcmp(x, zero, f);
}

/* the point struct (x, +-y, 1) of an affine point */
static void affine_struct(const group_ops *g, uint8_t *out, const uint8_t *x, const uint8_t *y,
                          int negate)
{
    memcpy(out, x, g->f);
    if (negate) g->neg(out + g->f, y); else memcpy(out + g->f, y, g->f);
    memcpy(out + 2 * g->f, g->one, g->f);
}

/* bucket[bk[k]] += +-point pt[k] for the whole batch, with one inversion. */
static void flush_batch(buckets *k)
{
    const group_ops *g = k->g;
    const size_t f = g->f;
    uint8_t acc[64], inv[64], t[64], lambda[64], x3[64], y3[64], ny[64];
    const int m = k->m;
    if (!m) return;
    memcpy(acc, g->one, f);
    for (int e = 0; e < m; e++) {
        uint8_t *d = k->diff + e * f;
        g->sub(d, k->pt[e], k->bx + (size_t)k->bk[e] * f);
        k->special[e] = is_zero_coord(d, f);       /* same x: a doubling or P - P */
        if (k->special[e]) memcpy(d, g->one, f);
        memcpy(k->pre + e * f, acc, f);
        g->mul(acc, acc, d);
    }
    g->inv(inv, acc);
    for (int e = m - 1; e >= 0; e--) {
        const uint8_t *px = k->pt[e], *py = px + f;
        uint8_t *bx = k->bx + (size_t)k->bk[e] * f, *by = k->by + (size_t)k->bk[e] * f;
        g->mul(t, inv, k->pre + e * f);                /* 1 / diff_e */
        g->mul(inv, inv, k->diff + e * f);
        if (k->neg[e]) { g->neg(ny, py); py = ny; }
        if (k->special[e]) {                           /* rare: through mcl's Jacobian add */
            uint8_t b[G2], q[G2], sum[G2];
            affine_struct(g, b, bx, by, 0);
            affine_struct(g, q, px, py, 0);
            g->padd(sum, b, q);
            if (g->is_zero(sum)) { k->has[k->bk[e]] = 0; continue; }
            g->normalize(b, sum);
            memcpy(bx, b, f);
            memcpy(by, b + f, f);
            continue;
        }
        g->sub(lambda, py, by);
        g->mul(lambda, lambda, t);                     /* (y2 - y1) / (x2 - x1) */
        g->sqr(x3, lambda);
        g->sub(x3, x3, bx);
        g->sub(x3, x3, px);                            /* lambda^2 - x1 - x2 */
        g->sub(y3, bx, x3);
        g->mul(y3, y3, lambda);
        g->sub(y3, y3, by);                            /* lambda (x1 - x3) - y1 */
        memcpy(bx, x3, f);
        memcpy(by, y3, f);
    }
    k->m = 0;
}

/* The sum of window w of job j, into j->window_sums. */
static int msm_window(const msm_job *j, int w)
{
    const group_ops *g = j->g;
    const size_t f = g->f, nb = (size_t)1 << (j->c - 1);
    buckets k;
    void *mem = buckets_alloc(&k, g, nb);
    if (!mem) return SVP_ENOMEM;
    const wdigit *row = j->digits + (size_t)w * j->stride + j->offset;
    uint32_t batch = 1;
    uint8_t q[G2];
    for (size_t e = 0; e < j->n_list; e++) {
        const uint32_t i = j->list[e];
        const int d = row[i];
        if (!d) continue;
        const uint32_t b = (uint32_t)(d < 0 ? -d : d) - 1;
        const uint8_t *p = j->points + (size_t)i * g->p;
        if (!k.has[b]) {                               /* an empty bucket takes the point */
            memcpy(k.bx + b * f, p, f);
            if (d < 0) g->neg(k.by + b * f, p + f); else memcpy(k.by + b * f, p + f, f);
            k.has[b] = 1;
            continue;
        }
        if (k.mark[b] == batch) {                      /* in this batch already: overflow */
            affine_struct(g, q, p, p + f, d < 0);
            g->padd(k.ovf + b * g->p, k.ovf + b * g->p, q);
            k.ovf_has[b] = 1;
            continue;
        }
        k.mark[b] = batch;
        k.bk[k.m] = b;
        k.pt[k.m] = p;
        k.neg[k.m] = d < 0;
        if (++k.m == BATCH) { flush_batch(&k); batch++; }
    }
    flush_batch(&k);
    /* sum (b + 1) bucket_b as the running sums from the top */
    uint8_t running[G2], total[G2];
    memset(running, 0, g->p);
    memset(total, 0, g->p);
    int started = 0;
    for (size_t b = nb; b-- > 0;) {
        if (k.has[b]) {
            affine_struct(g, q, k.bx + b * f, k.by + b * f, 0);
            g->padd(running, running, q);
            started = 1;
        }
        if (k.ovf_has[b]) { g->padd(running, running, k.ovf + b * g->p); started = 1; }
        if (started) g->padd(total, total, running);
    }
    memcpy(j->window_sums + (size_t)w * g->p, total, g->p);
    free(mem);
    return SVP_OK;
}

/* out = sum over w of 2^(c w) window_sums[w] */
static void msm_combine(const msm_job *j, uint8_t *out)
{
    const group_ops *g = j->g;
    memset(out, 0, g->p);
    for (int w = j->windows - 1; w >= 0; w--) {
        if (w != j->windows - 1)
            for (int b = 0; b < j->c; b++) g->pdbl(out, out);
        g->padd(out, out, j->window_sums + (size_t)w * g->p);
    }
}

/* Tasks over several jobs' windows: task t is window (t - first window of its job). */
typedef struct {
    msm_job *jobs;
    int n_jobs;
} window_tasks;

static size_t count_windows(const window_tasks *wt)
{
    size_t n = 0;
    for (int k = 0; k < wt->n_jobs; k++) n += (size_t)wt->jobs[k].windows;
    return n;
}

static int run_window_task(const window_tasks *wt, size_t t)
{
    for (int k = 0; k < wt->n_jobs; k++) {
        msm_job *j = &wt->jobs[k];
        if (t < (size_t)j->windows) return msm_window(j, (int)t);
        t -= (size_t)j->windows;
    }
    return SVP_OK;
}

static int is_zero_point(const group_ops *g, const uint8_t *p)
{
    return is_zero_coord(p + 2 * g->f, g->f);
}

static int task_window(void *wt, size_t t)
{
    return run_window_task(wt, t);
}

/* ---- a standalone MSM (tests and measurements) ---- */

/* out = sum standard[i] points[i] over n points of group g (0: G1, 1: G2; structs with z = 1,
 * or 0 at infinity) and standard-form scalars below r, on `threads` threads: ours (ours != 0)
 * or mcl's mulVec on `frs`, the same scalars as Fr structs. */
int svp_msm(int group, const uint8_t *points, const uint8_t *standard, uint8_t *frs, size_t n,
            int threads, int ours, uint8_t *out)
{
    if (!M.ready) return SVP_EAPI;
    const group_ops *g = &M.g[group ? 1 : 0];
    if (!ours) {
        uint8_t *copy = malloc(n * g->p + 1);
        if (!copy) return SVP_ENOMEM;
        memcpy(copy, points, n * g->p);
        g->mul_vec(out, copy, frs, n);
        free(copy);
        return SVP_OK;
    }
    int rc = SVP_ENOMEM;
    uint64_t *used = malloc(n * FR + 1);
    uint8_t *negate = malloc(n + 1);
    uint32_t *list = malloc(n * sizeof(uint32_t) + 1);
    wdigit *digits = NULL;
    uint8_t *sums = NULL;
    size_t hist[257] = {0}, n_list = 0;
    if (!used || !negate || !list) goto done;
    for (size_t i = 0; i < n; i++) {
        int neg;
        shorter_form(standard + i * FR, used + 4 * i, &neg);
        negate[i] = (uint8_t)neg;
        int bits = bit_length(used + 4 * i);
        if (bits && !is_zero_point(g, points + i * g->p)) {
            hist[bits]++;
            list[n_list++] = (uint32_t)i;
        }
    }
    msm_job job = {g, points, list, n_list, NULL, n, 0, 0, 0, NULL};
    plan_windows(hist, &job.c, &job.windows);
    digits = malloc((size_t)job.windows * n * sizeof(wdigit) + 1);
    sums = malloc((size_t)job.windows * g->p + 1);
    if (!digits || !sums) goto done;
    for (size_t i = 0; i < n; i++)
        recode(used + 4 * i, negate[i], job.c, job.windows, digits + i, n);
    job.digits = digits;
    job.window_sums = sums;
    window_tasks wt = {&job, 1};
    rc = run_pool(threads < 1 ? 1 : threads, count_windows(&wt), task_window, &wt);
    if (!rc) msm_combine(&job, out);
done:
    free(used); free(negate); free(list); free(digits); free(sums);
    return rc;
}

/* ---- one proof ---- */

/* The witness MSMs: A and B1 (G1) and B2 (G2) over every wire, C (G1) over the private ones;
 * then H (G1) over the domain. */
enum { JOB_B2, JOB_A, JOB_B1, JOB_C, N_WITNESS_JOBS };

typedef struct {
    const svp_key *key;
    const uint8_t *wtns;      /* n_vars standard-form 32-byte little-endian values */
    size_t chunk;             /* wires (phase 1) or domain points (phase 3) per task */
    /* phase 1: the wires' shorter forms, then their digits */
    uint64_t *used;
    uint8_t *negate;
    uint16_t *bits;
    wdigit *digits;
    int c, windows;
    atomic_llong bad_index;
    uint8_t *abc[3];          /* per-constraint values of a, b, c, then on the odd coset */
    msm_job jobs[N_WITNESS_JOBS];
    window_tasks wt;
    /* phase 3 */
    uint8_t *h;               /* a b - c on the odd coset, Fr structs */
    uint64_t *h_used;
    uint8_t *h_negate;
    uint32_t *h_list;
    wdigit *h_digits;
    uint8_t *h_sums;
    int h_c, h_windows;
} prove_ctx;

/* Phase 1a: tasks 0 and 1 the A and B rows, then chunks of wires: below r, shorter form. */
static int task_rows(prove_ctx *c, size_t t)
{
    const svp_key *k = c->key;
    uint8_t prod[FR];
    uint8_t *out = c->abc[t];
    /* The stored coef is coef * R^2 and the raw witness is standard form, so their Montgomery
     * product is the Fr struct of coef * w. */
    for (uint64_t i = 0; i < k->n_coefs; i++) {
        const uint8_t *e = k->coefs + i * COEF_BYTES;
        uint32_t matrix, constraint, signal;
        memcpy(&matrix, e, 4);
        if (matrix != t) continue;
        memcpy(&constraint, e + 4, 4);
        memcpy(&signal, e + 8, 4);
        M.fr_mul(prod, e + 12, c->wtns + (size_t)signal * FR);
        M.fr_add(out + (size_t)constraint * FR, out + (size_t)constraint * FR, prod);
    }
    return SVP_OK;
}

static int task_classify(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    if (t < 2) return task_rows(c, t);
    size_t lo = (t - 2) * c->chunk, hi = lo + c->chunk;
    if (hi > c->key->n_vars) hi = c->key->n_vars;
    for (size_t i = lo; i < hi; i++) {
        const uint8_t *x = c->wtns + i * FR;
        if (!below_r(x)) {
            long long expected = -1;
            atomic_compare_exchange_strong(&c->bad_index, &expected, (long long)i);
            return SVP_EWITNESS;
        }
        int neg;
        shorter_form(x, c->used + 4 * i, &neg);
        c->negate[i] = (uint8_t)neg;
        c->bits[i] = (uint16_t)bit_length(c->used + 4 * i);
    }
    return SVP_OK;
}

/* Phase 1b: digits of chunks of wires, and (tasks past them) each job's list. */
static int task_digits(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    const size_t nv = c->key->n_vars, tasks = (nv + c->chunk - 1) / c->chunk;
    if (t < tasks) {
        size_t lo = t * c->chunk, hi = lo + c->chunk > nv ? nv : lo + c->chunk;
        for (size_t i = lo; i < hi; i++)
            recode(c->used + 4 * i, c->negate[i], c->c, c->windows, c->digits + i, nv);
        return SVP_OK;
    }
    msm_job *j = &c->jobs[t - tasks];
    uint32_t *list = (uint32_t *)j->list;
    size_t n_points = j == &c->jobs[JOB_C] ? nv - c->key->n_public - 1 : nv, m = 0;
    for (size_t e = 0; e < n_points; e++)
        if (c->bits[e + j->offset] && !is_zero_point(j->g, j->points + e * j->g->p))
            list[m++] = (uint32_t)e;
    j->n_list = m;
    return SVP_OK;
}

/* Phase 2: the three coset evaluations (tasks 0..2), then the witness MSMs' windows. */
static int task_coset_or_window(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    const svp_key *k = c->key;
    if (t < 3) {
        uint8_t *a = c->abc[t];
        size_t n = k->domain_size;
        fft(a, k->log_n, k->tw_inv);                        /* values -> coefficients * N */
        for (size_t i = 0; i < n; i++)                      /* * g^i / N */
            M.fr_mul(a + i * FR, a + i * FR, k->coset_scale + i * FR);
        fft(a, k->log_n, k->tw);                            /* -> values on g * <w> */
        return SVP_OK;
    }
    return run_window_task(&c->wt, t - 3);
}

/* Phase 3a: h = a b - c on the coset, in standard form, in chunks. */
static int task_h(void *vctx, size_t t)
{
    static const uint64_t raw_one[4] = {1, 0, 0, 0};   /* mont(x, 1) = x in standard form */
    prove_ctx *c = vctx;
    size_t n = c->key->domain_size, lo = t * c->chunk, hi = lo + c->chunk > n ? n : lo + c->chunk;
    uint8_t std[FR];
    for (size_t i = lo; i < hi; i++) {
        M.fr_mul(c->h + i * FR, c->abc[0] + i * FR, c->abc[1] + i * FR);
        M.fr_sub(c->h + i * FR, c->h + i * FR, c->abc[2] + i * FR);
        M.fr_mul(std, c->h + i * FR, raw_one);
        int neg;
        shorter_form(std, c->h_used + 4 * i, &neg);
        c->h_negate[i] = (uint8_t)neg;
    }
    return SVP_OK;
}

static int task_h_digits(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    size_t n = c->key->domain_size, lo = t * c->chunk, hi = lo + c->chunk > n ? n : lo + c->chunk;
    for (size_t i = lo; i < hi; i++)
        recode(c->h_used + 4 * i, c->h_negate[i], c->h_c, c->h_windows, c->h_digits + i, n);
    return SVP_OK;
}

static int random_fr(uint8_t *out)
{
    uint8_t buf[FR];
    for (;;) {
        size_t got = 0;
        while (got < FR) {
            ssize_t n = getrandom(buf + got, FR - got, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                return SVP_ERANDOM;
            }
            got += (size_t)n;
        }
        buf[FR - 1] &= 0x3f;                 /* 254 bits, then rejection: uniform below r */
        if (below_r(buf)) break;
    }
    int rc = M.fr_set_le_mod(out, buf, FR) ? SVP_ERANDOM : SVP_OK;
    explicit_bzero(buf, FR);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t n_chunks(size_t n, size_t chunk)
{
    return (n + chunk - 1) / chunk;
}

/* Proves with witness `wtns` (n_vars standard-form 32-byte values). out receives the affine
 * coordinates in Montgomery form: A.x, A.y (64 bytes), B.x.c0, B.x.c1, B.y.c0, B.y.c1 (128),
 * C.x, C.y (64); a point at infinity as zeros. phase_s receives the seconds of the phases:
 * witness digits and rows, coset FFTs with the witness MSMs, the H MSM, the rest. */
int svp_prove(const svp_key *k, const uint8_t *wtns, int threads, uint8_t *out,
              long long *bad_index, double *phase_s)
{
    double t0 = now_s();
    if (!M.ready) return SVP_EAPI;
    if (threads < 1) threads = 1;
    const size_t n = k->domain_size, nv = k->n_vars;
    const group_ops *g1 = &M.g[0], *g2 = &M.g[1];
    int rc = SVP_ENOMEM;
    prove_ctx c;
    memset(&c, 0, sizeof c);
    c.key = k;
    c.wtns = wtns;
    atomic_store(&c.bad_index, -1);
    uint32_t *lists = NULL;
    uint8_t *sums = NULL;
    uint8_t r[FR], s[FR], rs[FR];

    c.used = malloc(nv * FR + 1);
    c.negate = malloc(nv + 1);
    c.bits = malloc(nv * sizeof(uint16_t) + 1);
    lists = malloc(N_WITNESS_JOBS * nv * sizeof(uint32_t) + 1);
    for (int i = 0; i < 3; i++) c.abc[i] = calloc(n, FR);
    c.h = malloc(n * FR);
    c.h_used = malloc(n * FR);
    c.h_negate = malloc(n);
    c.h_list = malloc(n * sizeof(uint32_t));
    if (!c.used || !c.negate || !c.bits || !lists || !c.abc[0] || !c.abc[1] || !c.abc[2]
        || !c.h || !c.h_used || !c.h_negate || !c.h_list)
        goto done;

    /* phase 1: rows A and B; each wire checked below r and in its shorter form; the window
     * from the bit lengths; the digits and each MSM's list of points */
    c.chunk = 8192;
    rc = run_pool(threads, 2 + n_chunks(nv, c.chunk), task_classify, &c);
    if (rc) { *bad_index = atomic_load(&c.bad_index); goto done; }
    size_t hist[257] = {0};
    for (size_t i = 0; i < nv; i++) hist[c.bits[i]]++;
    plan_windows(hist, &c.c, &c.windows);
    c.digits = malloc((size_t)c.windows * nv * sizeof(wdigit) + 1);
    sums = calloc((size_t)c.windows * (3 * G1 + G2) + 1, 1);
    if (!c.digits || !sums) { rc = SVP_ENOMEM; goto done; }
    const uint8_t *points[N_WITNESS_JOBS] = {k->b2, k->a, k->b1, k->c};
    for (int i = 0; i < N_WITNESS_JOBS; i++) {
        msm_job *j = &c.jobs[i];
        j->g = i == JOB_B2 ? g2 : g1;
        j->points = points[i];
        j->list = lists + (size_t)i * nv;
        j->digits = c.digits;
        j->stride = nv;
        j->offset = i == JOB_C ? k->n_public + 1 : 0;
        j->c = c.c;
        j->windows = c.windows;
        /* B2's sums (G2) first, then A's, B1's and C's */
        j->window_sums = sums + (i == JOB_B2 ? 0 : (size_t)c.windows * (G2 + (i - JOB_A) * G1));
    }
    rc = run_pool(threads, n_chunks(nv, c.chunk) + N_WITNESS_JOBS, task_digits, &c);
    if (rc) goto done;
    for (size_t i = 0; i < n; i++)
        M.fr_mul(c.abc[2] + i * FR, c.abc[0] + i * FR, c.abc[1] + i * FR);
    double t1 = now_s();

    /* phase 2: coset evaluations and the witness MSMs (B2 first: the slowest per point) */
    c.wt = (window_tasks){c.jobs, N_WITNESS_JOBS};
    rc = run_pool(threads, 3 + count_windows(&c.wt), task_coset_or_window, &c);
    if (rc) goto done;
    double t2 = now_s();

    /* phase 3: h = a b - c on the coset, its digits, and its MSM */
    rc = run_pool(threads, n_chunks(n, c.chunk), task_h, &c);
    if (rc) goto done;
    size_t h_hist[257] = {0}, h_n = 0;
    for (size_t i = 0; i < n; i++) {
        int bits = bit_length(c.h_used + 4 * i);
        if (bits && !is_zero_point(g1, k->h + i * G1)) {
            h_hist[bits]++;
            c.h_list[h_n++] = (uint32_t)i;
        }
    }
    plan_windows(h_hist, &c.h_c, &c.h_windows);
    c.h_digits = malloc((size_t)c.h_windows * n * sizeof(wdigit) + 1);
    c.h_sums = malloc((size_t)c.h_windows * G1 + 1);
    if (!c.h_digits || !c.h_sums) { rc = SVP_ENOMEM; goto done; }
    rc = run_pool(threads, n_chunks(n, c.chunk), task_h_digits, &c);
    msm_job hjob = {g1, k->h, c.h_list, h_n, c.h_digits, n, 0, c.h_c, c.h_windows, c.h_sums};
    c.wt = (window_tasks){&hjob, 1};
    if (!rc) rc = run_pool(threads, (size_t)c.h_windows, task_window, &c.wt);
    uint8_t ph[G1];
    if (!rc) msm_combine(&hjob, ph);
    if (rc) goto done;
    double t3 = now_s();

    uint8_t pa[G1], pb1[G1], pb[G2], pc[G1], p1[G1], p2[G2];
    msm_combine(&c.jobs[JOB_A], pa);
    msm_combine(&c.jobs[JOB_B1], pb1);
    msm_combine(&c.jobs[JOB_B2], pb);
    msm_combine(&c.jobs[JOB_C], pc);

    rc = random_fr(r);
    if (!rc) rc = random_fr(s);
    if (rc) goto done;
    M.fr_mul(rs, r, s);

    g1->padd(pa, pa, k->alpha1);
    g1->pmul(p1, k->delta1, r);   g1->padd(pa, pa, p1);
    g1->padd(pb1, pb1, k->beta1);
    g1->pmul(p1, k->delta1, s);   g1->padd(pb1, pb1, p1);
    g2->padd(pb, pb, k->beta2);
    g2->pmul(p2, k->delta2, s);   g2->padd(pb, pb, p2);
    g1->padd(pc, pc, ph);
    g1->pmul(p1, pa, s);          g1->padd(pc, pc, p1);
    g1->pmul(p1, pb1, r);         g1->padd(pc, pc, p1);
    g1->pmul(p1, k->delta1, rs);  g1->pneg(p1, p1);  g1->padd(pc, pc, p1);

    memset(out, 0, 256);
    if (!g1->is_zero(pa)) { g1->normalize(p1, pa); memcpy(out, p1, 64); }
    if (!g2->is_zero(pb)) { g2->normalize(p2, pb); memcpy(out + 64, p2, 128); }
    if (!g1->is_zero(pc)) { g1->normalize(p1, pc); memcpy(out + 192, p1, 64); }
    phase_s[0] = t1 - t0;
    phase_s[1] = t2 - t1;
    phase_s[2] = t3 - t2;
    phase_s[3] = now_s() - t3;
    rc = SVP_OK;

done:
    explicit_bzero(r, FR); explicit_bzero(s, FR); explicit_bzero(rs, FR);
    free(c.used); free(c.negate); free(c.bits); free(c.digits); free(lists); free(sums);
    free(c.abc[0]); free(c.abc[1]); free(c.abc[2]);
    free(c.h); free(c.h_used); free(c.h_negate); free(c.h_list); free(c.h_digits); free(c.h_sums);
    return rc;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mclprove",
    "A multi-core Groth16 prover over mcl (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__mclprove(void) { return PyModule_Create(&module); }
