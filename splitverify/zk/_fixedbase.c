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

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fixedbase",
    "Batched fixed-base BN254 multiplication over mcl (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__fixedbase(void) { return PyModule_Create(&module); }
