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

typedef void (*fr_op2)(void *z, const void *x, const void *y);
typedef void (*pt_op2)(void *z, const void *x, const void *y);
typedef void (*pt_op1)(void *y, const void *x);
typedef int (*pt_pred)(const void *x);
typedef void (*pt_mulvec)(void *z, void *x, const void *y, size_t n);
typedef int (*fr_set_le)(void *x, const void *buf, size_t size);

typedef void (*fp_op1)(void *y, const void *x);

static struct {
    fr_op2 fr_mul, fr_add, fr_sub;
    fr_op2 fp_mul, fp_add, fp_sub;
    fp_op1 fp_sqr, fp_inv;
    pt_op1 g1_dbl;
    fr_set_le fr_set_le_mod;
    struct {
        pt_op2 add, mul;
        pt_op1 neg, normalize;
        pt_pred is_zero;
        pt_mulvec mul_vec;
    } g[2];
    int ready;
} M;

/* Order: Fr mul, add, sub, setLittleEndianMod, then for G1 and G2 each: add, mul, neg,
 * normalize, isZero, mulVec; then Fp mul, add, sub, sqr, inv; then G1 dbl. */
void svp_set_api(void *const *fn)
{
    M.fr_mul = (fr_op2)fn[0];
    M.fr_add = (fr_op2)fn[1];
    M.fr_sub = (fr_op2)fn[2];
    M.fr_set_le_mod = (fr_set_le)fn[3];
    for (int k = 0; k < 2; k++) {
        void *const *p = fn + 4 + 6 * k;
        M.g[k].add = (pt_op2)p[0];
        M.g[k].mul = (pt_op2)p[1];
        M.g[k].neg = (pt_op1)p[2];
        M.g[k].normalize = (pt_op1)p[3];
        M.g[k].is_zero = (pt_pred)p[4];
        M.g[k].mul_vec = (pt_mulvec)p[5];
    }
    M.fp_mul = (fr_op2)fn[16];
    M.fp_add = (fr_op2)fn[17];
    M.fp_sub = (fr_op2)fn[18];
    M.fp_sqr = (fp_op1)fn[19];
    M.fp_inv = (fp_op1)fn[20];
    M.g1_dbl = (pt_op1)fn[21];
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

/* mcl's multi-exponentiation keeps its tables on the stack: give our threads room. */
#define WORKER_STACK ((size_t)64 << 20)

static int run_pool(int threads, size_t n_tasks, task_fn fn, void *ctx)
{
    pool p = {fn, ctx, n_tasks, 0, 0};
    if (!n_tasks) return SVP_OK;
    int extra = (size_t)threads - 1 < n_tasks - 1 ? threads - 1 : (int)(n_tasks - 1);
    pthread_t *tid = extra > 0 ? malloc(sizeof(pthread_t) * extra) : NULL;
    if (extra > 0 && !tid) return SVP_ENOMEM;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    int started = 0;
    for (; started < extra; started++)
        if (pthread_create(&tid[started], &attr, pool_worker, &p)) break;
    pthread_attr_destroy(&attr);
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

typedef struct {
    const uint8_t *points;   /* mcl structs */
    const uint8_t *scalars;  /* Fr structs, one per point */
    const uint8_t *standard; /* the same scalars in standard form (to class them), or NULL */
    size_t n;
    int group;               /* 0: G1, 1: G2 */
    size_t chunks;           /* tasks it is split into */
    uint8_t *partial;        /* one point struct per chunk */
} msm_job;

typedef struct {
    const svp_key *key;
    const uint8_t *wtns;     /* n_vars standard-form 32-byte little-endian values */
    uint8_t *w;              /* the witness as Fr structs */
    uint8_t *abc[3];         /* per-constraint values of a, b, c, then on the odd coset */
    uint8_t *h;              /* a b - c on the odd coset */
    msm_job *jobs;
    int n_jobs;
    size_t witness_chunk;
    atomic_llong bad_index;
    const uint8_t *one;      /* Fr one (Montgomery) */
} prove_ctx;

/* Montgomery trick (see the file header of devsetup): mont(w, R^2) = w as an Fr struct. */
static int task_witness(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    size_t lo = t * c->witness_chunk, hi = lo + c->witness_chunk;
    if (hi > c->key->n_vars) hi = c->key->n_vars;
    for (size_t i = lo; i < hi; i++) {
        const uint8_t *x = c->wtns + i * FR;
        if (!below_r(x)) {
            long long expected = -1;
            atomic_compare_exchange_strong(&c->bad_index, &expected, (long long)i);
            return SVP_EWITNESS;
        }
        M.fr_mul(c->w + i * FR, x, c->key->mont_r2);
    }
    return SVP_OK;
}

/* Rows A (task 0) and B (task 1): value[constraint] += coef * w[signal]. The stored coef is
 * coef * R^2 and the raw witness is standard form, so their Montgomery product is the Fr
 * struct of coef * w. */
static int task_rows(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    const svp_key *k = c->key;
    uint8_t prod[FR];
    uint8_t *out = c->abc[t];
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

/* ---- G1 multi-exponentiation of our own: Pippenger's buckets kept in affine form, each round
 * of bucket additions sharing one field inversion (Montgomery's trick), so an addition costs
 * about 6 field multiplications instead of a mixed Jacobian addition's 11. ---- */

#define FP 32
#define AFFINE_BATCH 256

typedef struct {
    const uint8_t *pts;     /* G1 structs, Z = 1, none at infinity */
    const uint64_t *sc;     /* standard-form scalars, 4 limbs each */
    uint8_t *bx, *by;       /* bucket coordinates */
    uint8_t *has;           /* bucket holds a point */
    uint32_t *mark;         /* batch that last claimed the bucket */
    uint8_t one[FP];
    /* the batch being formed */
    uint32_t bk[AFFINE_BATCH];
    size_t pi[AFFINE_BATCH];
    uint8_t diff[AFFINE_BATCH][FP], pre[AFFINE_BATCH][FP];
    int special[AFFINE_BATCH];
    int m;
} affine_msm;

static inline uint32_t window_digit(const uint64_t *s, int off, int c)
{
    int limb = off >> 6, sh = off & 63;
    uint64_t v = s[limb] >> sh;
    if (sh + c > 64 && limb < 3) v |= s[limb + 1] << (64 - sh);
    return (uint32_t)(v & ((1u << c) - 1));
}

static const uint8_t FP_ZERO_BYTES[FP];

/* bucket[bk[k]] += point pi[k] for the whole batch, with one inversion. */
static void flush_batch(affine_msm *a)
{
    uint8_t acc[FP], inv[FP], t[FP], lambda[FP], x3[FP], y3[FP];
    const int m = a->m;
    if (!m) return;
    memcpy(acc, a->one, FP);
    for (int k = 0; k < m; k++) {
        const uint8_t *p = a->pts + a->pi[k] * G1;
        M.fp_sub(a->diff[k], p, a->bx + (size_t)a->bk[k] * FP);
        a->special[k] = !memcmp(a->diff[k], FP_ZERO_BYTES, FP);   /* same x: doubling or P - P */
        if (a->special[k]) memcpy(a->diff[k], a->one, FP);
        memcpy(a->pre[k], acc, FP);
        M.fp_mul(acc, acc, a->diff[k]);
    }
    M.fp_inv(inv, acc);
    for (int k = m - 1; k >= 0; k--) {
        const uint8_t *p = a->pts + a->pi[k] * G1;
        uint8_t *bx = a->bx + (size_t)a->bk[k] * FP, *by = a->by + (size_t)a->bk[k] * FP;
        M.fp_mul(t, inv, a->pre[k]);                 /* 1 / diff_k */
        M.fp_mul(inv, inv, a->diff[k]);
        if (a->special[k]) {                           /* rare: through mcl's Jacobian add */
            uint8_t b[G1], sum[G1];
            memcpy(b, bx, FP); memcpy(b + FP, by, FP); memcpy(b + 2 * FP, a->one, FP);
            M.g[0].add(sum, b, p);
            if (M.g[0].is_zero(sum)) { a->has[a->bk[k]] = 0; continue; }
            M.g[0].normalize(b, sum);
            memcpy(bx, b, FP); memcpy(by, b + FP, FP);
            continue;
        }
        M.fp_sub(lambda, p + FP, by);
        M.fp_mul(lambda, lambda, t);                 /* (y2 - y1) / (x2 - x1) */
        M.fp_sqr(x3, lambda);
        M.fp_sub(x3, x3, bx);
        M.fp_sub(x3, x3, p);                         /* lambda^2 - x1 - x2 */
        M.fp_sub(y3, bx, x3);
        M.fp_mul(y3, y3, lambda);
        M.fp_sub(y3, y3, by);                        /* lambda (x1 - x3) - y1 */
        memcpy(bx, x3, FP);
        memcpy(by, y3, FP);
    }
    a->m = 0;
}

/* The window width minimising windows x (n affine additions + 2^(c+1) Jacobian additions in
 * the bucket sums); both additions cost about the same here (~0.4 us through mcl's API). */
static int window_bits(size_t n, int bits)
{
    int best = 2;
    double best_cost = 0;
    for (int c = 2; c <= 16; c++) {
        double cost = (double)((bits + c - 1) / c) * ((double)n + (double)((size_t)2 << c));
        if (c == 2 || cost < best_cost) { best = c; best_cost = cost; }
    }
    return best;
}

/* out = sum sc[i] pts[i] (scalars below 2^bits). Returns 0 or SVP_ENOMEM. */
static int msm_g1_affine(const uint8_t *pts, const uint64_t *sc, size_t n, int bits,
                         uint8_t *out)
{
    const int c = window_bits(n, bits);
    const size_t nb = (size_t)1 << c;
    affine_msm *a = calloc(1, sizeof *a);
    size_t *list = malloc(n * sizeof(size_t) + 1), *left = malloc(n * sizeof(size_t) + 1);
    if (a) {
        a->bx = malloc(nb * FP);
        a->by = malloc(nb * FP);
        a->has = malloc(nb);
        a->mark = calloc(nb, sizeof(uint32_t));
    }
    if (!a || !list || !left || !a->bx || !a->by || !a->has || !a->mark) {
        if (a) { free(a->bx); free(a->by); free(a->has); free(a->mark); }
        free(a); free(list); free(left);
        return SVP_ENOMEM;
    }
    a->pts = pts;
    a->sc = sc;
    memcpy(a->one, pts + 2 * FP, FP);      /* every input point has Z = 1 */
    uint32_t batch = 1;
    memset(out, 0, G1);
    for (int w = (bits + c - 1) / c - 1; w >= 0; w--) {
        for (int k = 0; k < c; k++) M.g1_dbl(out, out);
        memset(a->has, 0, nb);
        size_t n_list = 0;
        for (size_t i = 0; i < n; i++) list[n_list++] = i;
        while (n_list) {
            size_t n_left = 0;
            for (size_t j = 0; j < n_list; j++) {
                size_t i = list[j];
                uint32_t d = window_digit(sc + 4 * i, w * c, c);
                if (!d) continue;
                if (!a->has[d]) {
                    memcpy(a->bx + d * FP, pts + i * G1, FP);
                    memcpy(a->by + d * FP, pts + i * G1 + FP, FP);
                    a->has[d] = 1;
                    continue;
                }
                if (a->mark[d] == batch) { left[n_left++] = i; continue; }
                a->mark[d] = batch;
                a->bk[a->m] = d;
                a->pi[a->m] = i;
                if (++a->m == AFFINE_BATCH) { flush_batch(a); batch++; }
            }
            flush_batch(a);
            batch++;
            size_t *t = list; list = left; left = t;
            n_list = n_left;
        }
        uint8_t running[G1], sum[G1], b[G1];
        memset(running, 0, G1);
        memset(sum, 0, G1);
        int started = 0;
        for (size_t d = nb - 1; d >= 1; d--) {
            if (a->has[d]) {
                memcpy(b, a->bx + d * FP, FP);
                memcpy(b + FP, a->by + d * FP, FP);
                memcpy(b + 2 * FP, a->one, FP);
                M.g[0].add(running, running, b);
                started = 1;
            }
            if (started) M.g[0].add(sum, sum, running);
        }
        M.g[0].add(out, out, sum);
    }
    free(a->bx); free(a->by); free(a->has); free(a->mark);
    free(a); free(list); free(left);
    return SVP_OK;
}

/* Scalar classes: mcl's Pippenger costs about in proportion to the longest scalar of a call
 * (measured: 16-bit scalars 0.15x, 64-bit 0.35x the time of full-width ones), so scalars are
 * batched by bit length, and a small negative value r - k becomes k on the negated point. */
#define N_CLASSES 5
static const int CLASS_BITS[N_CLASSES - 1] = {16, 32, 64, 128};
enum { CLASS_ZERO = -2, CLASS_ONE = -1 };

static int bit_length(const uint64_t *v)
{
    for (int i = 3; i >= 0; i--)
        if (v[i]) return 64 * i + 64 - __builtin_clzll(v[i]);
    return 0;
}

static int class_bits(int cls)
{
    return cls < N_CLASSES - 1 ? CLASS_BITS[cls] : 256;
}

/* The class of a standard-form scalar below r; *negate says whether to use r - v, which
 * `used` receives (else v). */
static int scalar_class(const uint8_t *std, int *negate, uint64_t *used)
{
    uint64_t v[4], r[4], d[4];
    memcpy(v, std, FR);
    memcpy(r, R_LE, FR);
    unsigned __int128 borrow = 0;
    for (int i = 0; i < 4; i++) {             /* d = r - v */
        unsigned __int128 t = (unsigned __int128)r[i] - v[i] - (uint64_t)borrow;
        d[i] = (uint64_t)t;
        borrow = (t >> 64) ? 1 : 0;
    }
    int bits = bit_length(v), neg_bits = bit_length(d);
    *negate = neg_bits < bits;
    if (*negate) bits = neg_bits;
    memcpy(used, *negate ? d : v, FR);
    if (bits == 0) return CLASS_ZERO;
    if (bits == 1) return CLASS_ONE;
    for (int k = 0; k < N_CLASSES - 1; k++)
        if (bits <= CLASS_BITS[k]) return k;
    return N_CLASSES - 1;
}

/* out = sum scalars[i] points[i] for n G1 points (structs with Z = 1) and standard-form
 * scalars below 2^bits: with our affine-bucket method, or with mcl's mulVec on `frs` (the same
 * scalars as Fr structs). For tests and measurements. */
int svp_msm_g1(const uint8_t *points, const uint64_t *standard, uint8_t *frs, size_t n,
               int bits, int ours, uint8_t *out)
{
    if (!M.ready) return SVP_EAPI;
    if (ours) return msm_g1_affine(points, standard, n, bits, out);
    uint8_t *copy = malloc(n * G1 + 1);
    if (!copy) return SVP_ENOMEM;
    memcpy(copy, points, n * G1);
    M.g[0].mul_vec(out, copy, frs, n);
    free(copy);
    return SVP_OK;
}

/* acc += the MSM of one batch: ours for G1 (affine buckets), mcl's Pippenger for G2. */
static int flush_class(int g, uint8_t *pts, uint8_t *frs, const uint64_t *standard, size_t m,
                       int bits, uint8_t *acc)
{
    uint8_t part[G2];
    if (g == 0 && m >= 64) {
        if (msm_g1_affine(pts, standard, m, bits, part)) return SVP_ENOMEM;
    } else {
        M.g[g].mul_vec(part, pts, frs, m);
    }
    M.g[g].add(acc, acc, part);
    return SVP_OK;
}

/* Sum of scalars[i] * points[i] over [lo, hi): zero scalars skipped, +-1 added directly, the
 * rest per class, in batches (mcl's G2 version crashes on very long vectors). */
static int msm_range(const msm_job *j, size_t lo, size_t hi, const uint8_t *one, uint8_t *acc)
{
    static const uint8_t zero_fr[FR];
    static const uint64_t raw_one[4] = {1, 0, 0, 0};   /* mont(x, 1) = x in standard form */
    const int g = j->group;
    const size_t psz = g ? G2 : G1;
    const size_t batch_max = g ? 4096 : 32768;
    size_t cap = hi - lo < batch_max ? hi - lo : batch_max;
    uint8_t *pts[N_CLASSES] = {0}, *frs[N_CLASSES] = {0}, neg[G2];
    uint64_t *std[N_CLASSES] = {0};
    size_t m[N_CLASSES] = {0};
    int rc = SVP_OK;
    memset(acc, 0, psz);
    for (int k = 0; k < N_CLASSES; k++) {
        pts[k] = malloc(cap * psz + 1);
        frs[k] = malloc(cap * FR + 1);
        std[k] = malloc(cap * FR + 1);
        if (!pts[k] || !frs[k] || !std[k]) { rc = SVP_ENOMEM; goto done; }
    }
    for (size_t i = lo; i < hi && !rc; i++) {
        const uint8_t *s = j->scalars + i * FR, *p = j->points + i * psz;
        int cls, negate = 0;
        uint64_t used[4];
        if (j->standard) {
            cls = scalar_class(j->standard + i * FR, &negate, used);
        } else {
            cls = !memcmp(s, zero_fr, FR) ? CLASS_ZERO
                : !memcmp(s, one, FR) ? CLASS_ONE : N_CLASSES - 1;
            M.fr_mul(used, s, raw_one);
        }
        if (cls == CLASS_ZERO || M.g[g].is_zero(p)) continue;
        if (cls == CLASS_ONE) {
            if (negate) { M.g[g].neg(neg, p); M.g[g].add(acc, acc, neg); }
            else M.g[g].add(acc, acc, p);
            continue;
        }
        uint8_t *dp = pts[cls] + m[cls] * psz, *ds = frs[cls] + m[cls] * FR;
        if (negate) { M.g[g].neg(dp, p); M.fr_sub(ds, zero_fr, s); }
        else { memcpy(dp, p, psz); memcpy(ds, s, FR); }
        memcpy(std[cls] + 4 * m[cls], used, FR);
        if (++m[cls] == cap) {
            rc = flush_class(g, pts[cls], frs[cls], std[cls], m[cls], class_bits(cls), acc);
            m[cls] = 0;
        }
    }
    for (int k = 0; k < N_CLASSES && !rc; k++)
        if (m[k]) rc = flush_class(g, pts[k], frs[k], std[k], m[k], class_bits(k), acc);
done:
    for (int k = 0; k < N_CLASSES; k++) { free(pts[k]); free(frs[k]); free(std[k]); }
    return rc;
}

static int task_msm(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    for (int k = 0; k < c->n_jobs; k++) {
        msm_job *j = &c->jobs[k];
        if (t >= j->chunks) { t -= j->chunks; continue; }
        size_t per = (j->n + j->chunks - 1) / j->chunks;
        size_t lo = t * per, hi = lo + per > j->n ? j->n : lo + per;
        if (lo > hi) lo = hi;
        return msm_range(j, lo, hi, c->one, j->partial + t * (j->group ? G2 : G1));
    }
    return SVP_OK;
}

/* Phase 2: the three coset evaluations (tasks 0..2), then the witness MSM chunks. */
static int task_coset_or_msm(void *vctx, size_t t)
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
    return task_msm(vctx, t - 3);
}

static int task_h(void *vctx, size_t t)
{
    prove_ctx *c = vctx;
    msm_job *j = &c->jobs[0];
    size_t per = (j->n + j->chunks - 1) / j->chunks;
    size_t lo = t * per, hi = lo + per > j->n ? j->n : lo + per;
    for (size_t i = lo; i < hi; i++) {
        M.fr_mul(c->h + i * FR, c->abc[0] + i * FR, c->abc[1] + i * FR);
        M.fr_sub(c->h + i * FR, c->h + i * FR, c->abc[2] + i * FR);
    }
    return task_msm(vctx, t);
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

static size_t chunks_for(size_t n, int threads, size_t min_size)
{
    size_t k = (size_t)threads * 2;
    while (k > 1 && n / k < min_size) k--;
    return k ? k : 1;
}

static void sum_partials(int g, const msm_job *j, uint8_t *out)
{
    const size_t psz = g ? G2 : G1;
    memset(out, 0, psz);
    for (size_t i = 0; i < j->chunks; i++) M.g[g].add(out, out, j->partial + i * psz);
}

/* Proves with witness `wtns` (n_vars standard-form 32-byte values). out receives the affine
 * coordinates in Montgomery form: A.x, A.y (64 bytes), B.x.c0, B.x.c1, B.y.c0, B.y.c1 (128),
 * C.x, C.y (64); a point at infinity as zeros. phase_s receives the seconds of the phases:
 * witness and rows, coset FFTs with the witness MSMs, the H MSM, the rest. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int svp_prove(const svp_key *k, const uint8_t *wtns, int threads, uint8_t *out,
              long long *bad_index, double *phase_s)
{
    double t0 = now_s();
    if (!M.ready) return SVP_EAPI;
    if (threads < 1) threads = 1;
    const size_t n = k->domain_size, nv = k->n_vars, n_priv = nv - k->n_public - 1;
    int rc = SVP_ENOMEM;
    prove_ctx c;
    memset(&c, 0, sizeof c);
    c.key = k;
    c.wtns = wtns;
    c.one = k->one;
    atomic_store(&c.bad_index, -1);
    msm_job jobs[4];
    memset(jobs, 0, sizeof jobs);
    uint8_t *partials = NULL;
    uint8_t r[FR], s[FR], rs[FR];

    c.w = malloc(nv * FR + 1);
    for (int i = 0; i < 3; i++) c.abc[i] = calloc(n, FR);
    c.h = malloc(n * FR);
    if (!c.w || !c.abc[0] || !c.abc[1] || !c.abc[2] || !c.h) goto done;

    /* phase 1: the witness as Fr structs; the A and B rows */
    c.witness_chunk = 4096;
    size_t w_tasks = (nv + c.witness_chunk - 1) / c.witness_chunk;
    rc = run_pool(threads, w_tasks, task_witness, &c);
    if (rc) { *bad_index = atomic_load(&c.bad_index); goto done; }
    rc = run_pool(threads, 2, task_rows, &c);
    if (rc) goto done;
    for (size_t i = 0; i < n; i++)
        M.fr_mul(c.abc[2] + i * FR, c.abc[0] + i * FR, c.abc[1] + i * FR);
    double t1 = now_s();

    /* phase 2: coset evaluations and the witness MSMs (B2 first: the slowest per point) */
    const uint8_t *w_priv = c.w + (k->n_public + 1) * FR;
    const uint8_t *std_priv = wtns + (k->n_public + 1) * FR;
    jobs[0] = (msm_job){k->b2, c.w, wtns, nv, 1, chunks_for(nv, threads, 1024), NULL};
    jobs[1] = (msm_job){k->a, c.w, wtns, nv, 0, chunks_for(nv, threads, 4096), NULL};
    jobs[2] = (msm_job){k->b1, c.w, wtns, nv, 0, chunks_for(nv, threads, 4096), NULL};
    jobs[3] = (msm_job){k->c, w_priv, std_priv, n_priv, 0, chunks_for(n_priv, threads, 4096),
                        NULL};
    size_t total_chunks = 0, bytes = 0;
    for (int i = 0; i < 4; i++) {
        total_chunks += jobs[i].chunks;
        bytes += jobs[i].chunks * (jobs[i].group ? G2 : G1);
    }
    size_t h_chunks = chunks_for(n, threads, 4096);
    partials = calloc(bytes + h_chunks * G1, 1);
    if (!partials) { rc = SVP_ENOMEM; goto done; }
    for (int i = 0, off = 0; i < 4; i++) {
        jobs[i].partial = partials + off;
        off += (int)(jobs[i].chunks * (jobs[i].group ? G2 : G1));
    }
    c.jobs = jobs;
    c.n_jobs = 4;
    rc = run_pool(threads, 3 + total_chunks, task_coset_or_msm, &c);
    if (rc) goto done;
    double t2 = now_s();

    /* phase 3: h = a b - c on the coset, and its MSM */
    msm_job hjob = {k->h, c.h, NULL, n, 0, h_chunks, partials + bytes};
    c.jobs = &hjob;
    c.n_jobs = 1;
    rc = run_pool(threads, h_chunks, task_h, &c);
    if (rc) goto done;
    double t3 = now_s();

    uint8_t pa[G1], pb1[G1], pb[G2], pc[G1], ph[G1], p1[G1], p2[G2];
    sum_partials(0, &jobs[1], pa);
    sum_partials(0, &jobs[2], pb1);
    sum_partials(1, &jobs[0], pb);
    sum_partials(0, &jobs[3], pc);
    sum_partials(0, &hjob, ph);

    rc = random_fr(r);
    if (!rc) rc = random_fr(s);
    if (rc) goto done;
    M.fr_mul(rs, r, s);

    M.g[0].add(pa, pa, k->alpha1);
    M.g[0].mul(p1, k->delta1, r);   M.g[0].add(pa, pa, p1);
    M.g[0].add(pb1, pb1, k->beta1);
    M.g[0].mul(p1, k->delta1, s);   M.g[0].add(pb1, pb1, p1);
    M.g[1].add(pb, pb, k->beta2);
    M.g[1].mul(p2, k->delta2, s);   M.g[1].add(pb, pb, p2);
    M.g[0].add(pc, pc, ph);
    M.g[0].mul(p1, pa, s);          M.g[0].add(pc, pc, p1);
    M.g[0].mul(p1, pb1, r);         M.g[0].add(pc, pc, p1);
    M.g[0].mul(p1, k->delta1, rs);  M.g[0].neg(p1, p1);  M.g[0].add(pc, pc, p1);

    memset(out, 0, 256);
    if (!M.g[0].is_zero(pa)) { M.g[0].normalize(p1, pa); memcpy(out, p1, 64); }
    if (!M.g[1].is_zero(pb)) { M.g[1].normalize(p2, pb); memcpy(out + 64, p2, 128); }
    if (!M.g[0].is_zero(pc)) { M.g[0].normalize(p1, pc); memcpy(out + 192, p1, 64); }
    phase_s[0] = t1 - t0;
    phase_s[1] = t2 - t1;
    phase_s[2] = t3 - t2;
    phase_s[3] = now_s() - t3;
    rc = SVP_OK;

done:
    explicit_bzero(r, FR); explicit_bzero(s, FR); explicit_bzero(rs, FR);
    free(c.w); free(c.abc[0]); free(c.abc[1]); free(c.abc[2]); free(c.h); free(partials);
    return rc;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mclprove",
    "A multi-core Groth16 prover over mcl (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__mclprove(void) { return PyModule_Create(&module); }
