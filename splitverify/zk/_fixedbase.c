/*
 * Batched fixed-base scalar multiplication for BN254 (alt_bn128), used by the
 * development trusted setup.  The curve arithmetic itself is mcl's (loaded by the
 * PyPI package `mclbn256`); this file only adds a windowed fixed-base method and a
 * batch normalisation (one field inversion per chunk, Montgomery's trick), because
 * a setup multiplies one base point by about a million scalars and a generic
 * double-and-add through ctypes costs ~60 us per point.
 *
 * The functions are generic in the group: the caller passes mcl's function
 * pointers and the byte sizes of a coordinate (32 for G1 over Fp, 64 for G2 over
 * Fp2).  Points are mcl's Jacobian structs (X, Y, Z), coordinates in Montgomery
 * form with R = 2^256, which is also snarkjs' "LEM" encoding, so a normalised
 * point's X||Y bytes are written to .ptau/.zkey files as they are.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*point_op2)(void *z, const void *x, const void *y);
typedef void (*point_op1)(void *y, const void *x);
typedef int (*point_pred)(const void *x);
typedef void (*field_op2)(void *z, const void *x, const void *y);
typedef void (*field_op1)(void *y, const void *x);

typedef struct {
    point_op2 add;
    point_op1 dbl;
    point_pred is_zero;
    field_op2 fmul;
    field_op1 finv;
    field_op1 fsqr;
    int coord;          /* bytes per coordinate */
} group_ops;

#define PT(buf, i, g) ((uint8_t *)(buf) + (size_t)(i) * 3 * (g)->coord)

/* Normalise n Jacobian points in place to Z = one; zero points are left as they are.
 * scratch holds n coordinates. Returns 0, or -1 if memory ran out. */
static int batch_normalize(const group_ops *g, uint8_t *pts, size_t n, const uint8_t *one)
{
    const int c = g->coord;
    uint8_t *prefix = malloc((size_t)n * c);
    uint8_t acc[128], inv[128], t[128], zi[128], zi2[128], zi3[128];
    if (!prefix) return -1;
    memcpy(acc, one, c);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = PT(pts, i, g);
        memcpy(prefix + i * c, acc, c);          /* product of Z_0..Z_{i-1} */
        if (!g->is_zero(p)) g->fmul(acc, acc, p + 2 * c);
    }
    g->finv(inv, acc);                            /* 1 / prod Z */
    for (size_t k = n; k-- > 0;) {
        uint8_t *p = PT(pts, k, g);
        if (g->is_zero(p)) continue;
        g->fmul(zi, inv, prefix + k * c);         /* 1 / Z_k */
        g->fmul(t, inv, p + 2 * c);
        memcpy(inv, t, c);
        g->fsqr(zi2, zi);
        g->fmul(zi3, zi2, zi);
        g->fmul(t, p, zi2);      memcpy(p, t, c);
        g->fmul(t, p + c, zi3);  memcpy(p + c, t, c);
        memcpy(p + 2 * c, one, c);
    }
    free(prefix);
    return 0;
}

/* Fill table[win * (2^w - 1) + d - 1] = d * 2^(w*win) * base for d in 1..2^w-1,
 * win in 0..nwin-1, normalised. base must be normalised. */
int svfb_build_table(void *add, void *dbl, void *is_zero, void *fmul, void *finv, void *fsqr,
                     int coord, const uint8_t *base, int w, int nwin, uint8_t *table,
                     const uint8_t *one)
{
    group_ops g = {(point_op2)add, (point_op1)dbl, (point_pred)is_zero, (field_op2)fmul,
                   (field_op1)finv, (field_op1)fsqr, coord};
    const size_t per = ((size_t)1 << w) - 1, sz = 3 * (size_t)coord;
    uint8_t cur[3 * 128];
    memcpy(cur, base, sz);
    for (int win = 0; win < nwin; win++) {
        uint8_t *row = table + (size_t)win * per * sz;
        memcpy(row, cur, sz);
        for (size_t d = 1; d < per; d++) g.add(row + d * sz, row + (d - 1) * sz, cur);
        g.add(cur, row + (per - 1) * sz, cur);    /* 2^w * cur */
        if (batch_normalize(&g, row, per, one)) return -1;
        uint8_t tmp[3 * 128];
        memcpy(tmp, cur, sz);
        if (batch_normalize(&g, tmp, 1, one)) return -1;
        memcpy(cur, tmp, sz);
    }
    return 0;
}

/* out[i] = scalar_i * base as affine X||Y (2*coord bytes; all zero for infinity).
 * scalars: n little-endian 32-byte integers < 2^(w*nwin). */
int svfb_mul_batch(void *add, void *dbl, void *is_zero, void *fmul, void *finv, void *fsqr,
                   int coord, const uint8_t *table, int w, int nwin, const uint8_t *scalars,
                   size_t n, uint8_t *out, const uint8_t *one, const uint8_t *zero_point)
{
    group_ops g = {(point_op2)add, (point_op1)dbl, (point_pred)is_zero, (field_op2)fmul,
                   (field_op1)finv, (field_op1)fsqr, coord};
    const size_t per = ((size_t)1 << w) - 1, sz = 3 * (size_t)coord;
    const size_t chunk = 4096;
    uint8_t *work = malloc(chunk * sz);
    if (!work) return -1;
    for (size_t start = 0; start < n; start += chunk) {
        size_t m = n - start < chunk ? n - start : chunk;
        for (size_t j = 0; j < m; j++) {
            const uint8_t *s = scalars + (start + j) * 32;
            uint8_t *acc = work + j * sz;
            int have = 0;
            for (int win = 0; win < nwin; win++) {
                int bit = win * w;
                uint32_t d = 0;
                for (int b = 0; b < w; b++, bit++)
                    if (bit < 256 && (s[bit >> 3] >> (bit & 7)) & 1) d |= 1u << b;
                if (!d) continue;
                const uint8_t *entry = table + ((size_t)win * per + d - 1) * sz;
                if (have) g.add(acc, acc, entry);
                else { memcpy(acc, entry, sz); have = 1; }
            }
            if (!have) memcpy(acc, zero_point, sz);
        }
        if (batch_normalize(&g, work, m, one)) { free(work); return -1; }
        for (size_t j = 0; j < m; j++) {
            uint8_t *dst = out + (start + j) * 2 * coord;
            if (g.is_zero(work + j * sz)) memset(dst, 0, 2 * coord);
            else memcpy(dst, work + j * sz, 2 * coord);
        }
    }
    free(work);
    return 0;
}

/* ---- phase-2 key ceremony: one scalar times many points, point loading and validation ---- */

typedef void (*scalar_mul_fn)(void *z, const void *x, const void *fr);
typedef int (*fr_from_le_fn)(void *fr, const void *buf, size_t size);

/* 1 if the little-endian coord-byte value at a is below the modulus (32 bytes LE), per Fp limb. */
static int is_canonical(const uint8_t *a, int coord, const uint8_t *modulus)
{
    for (int off = 0; off < coord; off += 32) {
        int below = 0;
        for (int i = 31; i >= 0; i--) {
            if (a[off + i] != modulus[i]) { below = a[off + i] < modulus[i]; break; }
        }
        if (!below) return 0;
    }
    return 1;
}

/* Copy n LEM points (X||Y, 2*coord bytes each; all zeros = infinity) into mcl Jacobian structs
 * at jac (Z = one; infinity as mcl's all-zero struct), checking that every coordinate is
 * canonical (< modulus) and every finite point satisfies y^2 = x^3 + b. jac may be NULL (check
 * only). Returns -1 when all points pass, else the index of the first that does not. */
long long svfb_load_points(void *fmul, void *fsqr, void *fadd, int coord, const uint8_t *lem,
                           size_t n, const uint8_t *modulus, const uint8_t *b,
                           const uint8_t *one, uint8_t *jac)
{
    field_op2 mul = (field_op2)fmul, add = (field_op2)fadd;
    field_op1 sqr = (field_op1)fsqr;
    const size_t in_sz = 2 * (size_t)coord, out_sz = 3 * (size_t)coord;
    uint8_t lhs[128], rhs[128];
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = lem + i * in_sz;
        int zero = 1;
        for (size_t k = 0; k < in_sz; k++) if (p[k]) { zero = 0; break; }
        if (jac) {
            uint8_t *q = jac + i * out_sz;
            if (zero) { memset(q, 0, out_sz); continue; }
            memcpy(q, p, in_sz);
            memcpy(q + in_sz, one, coord);
        }
        if (zero) continue;
        if (!is_canonical(p, coord, modulus) || !is_canonical(p + coord, coord, modulus))
            return (long long)i;
        sqr(lhs, p + coord);               /* y^2 */
        sqr(rhs, p);                       /* x^2 */
        mul(rhs, rhs, p);                  /* x^3 */
        add(rhs, rhs, b);                  /* x^3 + b */
        if (memcmp(lhs, rhs, coord) != 0) return (long long)i;
    }
    return -1;
}

/* out[i] = s * in[i] for n LEM points and one mcl Fr scalar s (mcl's variable-time scalar
 * multiplication: the points are public, s is the caller's secret and its timing is not a
 * concern on the caller's own machine), written as normalised LEM (infinity as zeros).
 * Returns 0, or -1 if memory ran out. */
int svfb_scale_points(void *mul, void *is_zero, void *fmul, void *finv, void *fsqr, int coord,
                      const uint8_t *in, size_t n, const uint8_t *fr, uint8_t *out,
                      const uint8_t *one)
{
    group_ops g = {NULL, NULL, (point_pred)is_zero, (field_op2)fmul, (field_op1)finv,
                   (field_op1)fsqr, coord};
    scalar_mul_fn smul = (scalar_mul_fn)mul;
    const size_t in_sz = 2 * (size_t)coord, sz = 3 * (size_t)coord;
    const size_t chunk = 4096;
    uint8_t *work = malloc(chunk * sz);
    uint8_t src[3 * 128];
    if (!work) return -1;
    for (size_t start = 0; start < n; start += chunk) {
        size_t m = n - start < chunk ? n - start : chunk;
        for (size_t j = 0; j < m; j++) {
            const uint8_t *p = in + (start + j) * in_sz;
            int zero = 1;
            for (size_t k = 0; k < in_sz; k++) if (p[k]) { zero = 0; break; }
            if (zero) { memset(work + j * sz, 0, sz); continue; }
            memcpy(src, p, in_sz);
            memcpy(src + in_sz, one, coord);
            smul(work + j * sz, src, fr);
        }
        if (batch_normalize(&g, work, m, one)) { free(work); return -1; }
        for (size_t j = 0; j < m; j++) {
            uint8_t *dst = out + (start + j) * in_sz;
            if (g.is_zero(work + j * sz)) memset(dst, 0, in_sz);
            else memcpy(dst, work + j * sz, in_sz);
        }
    }
    free(work);
    return 0;
}

/* fr[i] = the integer at in[i * width] (width little-endian bytes) as an mcl Fr, through mcl's
 * setLittleEndianMod. Returns 0, or -1 if mcl rejected one. */
int svfb_fr_from_le(void *set_le_mod, const uint8_t *in, size_t width, size_t n, uint8_t *fr,
                    size_t fr_size)
{
    fr_from_le_fn set = (fr_from_le_fn)set_le_mod;
    for (size_t i = 0; i < n; i++)
        if (set(fr + i * fr_size, in + i * width, width) != 0) return -1;
    return 0;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fixedbase",
    "Batched fixed-base BN254 multiplication over mcl (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__fixedbase(void) { return PyModule_Create(&module); }
