/*
 * circomlib's Poseidon over the BN254 scalar field r, and the commitments of
 * splitverify.commit (packed tensor slots hashed by PoseidonChain), in C: the Python
 * implementation in splitverify/commit.py is the reference and the source of the round
 * constants, which the caller passes in (already in Montgomery form, see native_poseidon.py);
 * this file holds no constant of Poseidon, only the field's.
 *
 * Field elements are 4 little-endian 64-bit limbs in Montgomery form (R = 2^256). Sums of
 * products (the MDS mixes, the sparse partial rounds) are summed exactly and reduced once.
 *
 * Called through ctypes (which releases the GIL for each call); the module init only exists
 * so that setuptools builds and names the shared object.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef __int128 i128;

#define FULL_ROUNDS 8
#define MAX_T 17
#define PACK_BITS 253

/* r, −r^−1 mod 2^64, R^2 mod r */
static const uint64_t MOD[4] = {0x43e1f593f0000001ULL, 0x2833e84879b97091ULL,
                                0xb85045b68181585dULL, 0x30644e72e131a029ULL};
static const uint64_t MOD_INV = 0xc2e1f593efffffffULL;
static const uint64_t R2[4] = {0x1bb8e645ae216da7ULL, 0x53fe3ab1e35c59e3ULL,
                               0x8c49833d53bb8085ULL, 0x0216d0b17f4e44a5ULL};

typedef struct { uint64_t v[4]; } fe;

static int geq_mod(const uint64_t *a)
{
    for (int i = 3; i >= 0; i--) {
        if (a[i] != MOD[i]) return a[i] > MOD[i];
    }
    return 1;
}

static void sub_mod_once(uint64_t *a)
{
    u128 borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a[i] - MOD[i] - borrow;
        a[i] = (uint64_t)d;
        borrow = (d >> 64) & 1;
    }
}

/* Product scanning: a 192-bit column accumulator (lo, hi) held in registers. */
#define MAC(x, y) do { u128 p_ = (u128)(x) * (y); lo += p_; hi += lo < p_; } while (0)
#define NEXT_COLUMN(word) do { (word) = (uint64_t)lo; lo = (lo >> 64) | ((u128)hi << 64); \
                               hi = 0; } while (0)

/* out = (Σ_{j<n} a[j·sa] · b[j]) / R mod r, for n ≤ 17 elements below r: the products are summed
 * exactly (below 17r² < 2^512) and reduced once (Montgomery, column by column). */
static inline void dot(fe *out, const fe *a, size_t sa, const fe *b, int n)
{
    uint64_t t[9], m[4];
    u128 lo = 0;
    uint64_t hi = 0;
#define X(i) a[j * sa].v[i]
#define Y(i) b[j].v[i]
    for (int j = 0; j < n; j++) { MAC(X(0), Y(0)); }
    NEXT_COLUMN(t[0]);
    for (int j = 0; j < n; j++) { MAC(X(0), Y(1)); MAC(X(1), Y(0)); }
    NEXT_COLUMN(t[1]);
    for (int j = 0; j < n; j++) { MAC(X(0), Y(2)); MAC(X(1), Y(1)); MAC(X(2), Y(0)); }
    NEXT_COLUMN(t[2]);
    for (int j = 0; j < n; j++) {
        MAC(X(0), Y(3)); MAC(X(1), Y(2)); MAC(X(2), Y(1)); MAC(X(3), Y(0));
    }
    NEXT_COLUMN(t[3]);
    for (int j = 0; j < n; j++) { MAC(X(1), Y(3)); MAC(X(2), Y(2)); MAC(X(3), Y(1)); }
    NEXT_COLUMN(t[4]);
    for (int j = 0; j < n; j++) { MAC(X(2), Y(3)); MAC(X(3), Y(2)); }
    NEXT_COLUMN(t[5]);
    for (int j = 0; j < n; j++) { MAC(X(3), Y(3)); }
    NEXT_COLUMN(t[6]);
    NEXT_COLUMN(t[7]);
    t[8] = (uint64_t)lo;
#undef X
#undef Y
    /* Montgomery reduction: m_k makes column k vanish; columns 4 … 8 are the result */
    lo = t[0];
    m[0] = (uint64_t)lo * MOD_INV; MAC(m[0], MOD[0]);
    NEXT_COLUMN(t[0]);
    lo += t[1]; hi += lo < t[1];
    MAC(m[0], MOD[1]);
    m[1] = (uint64_t)lo * MOD_INV; MAC(m[1], MOD[0]);
    NEXT_COLUMN(t[1]);
    lo += t[2]; hi += lo < t[2];
    MAC(m[0], MOD[2]); MAC(m[1], MOD[1]);
    m[2] = (uint64_t)lo * MOD_INV; MAC(m[2], MOD[0]);
    NEXT_COLUMN(t[2]);
    lo += t[3]; hi += lo < t[3];
    MAC(m[0], MOD[3]); MAC(m[1], MOD[2]); MAC(m[2], MOD[1]);
    m[3] = (uint64_t)lo * MOD_INV; MAC(m[3], MOD[0]);
    NEXT_COLUMN(t[3]);
    lo += t[4]; hi += lo < t[4];
    MAC(m[1], MOD[3]); MAC(m[2], MOD[2]); MAC(m[3], MOD[1]);
    NEXT_COLUMN(t[4]);
    lo += t[5]; hi += lo < t[5];
    MAC(m[2], MOD[3]); MAC(m[3], MOD[2]);
    NEXT_COLUMN(t[5]);
    lo += t[6]; hi += lo < t[6];
    MAC(m[3], MOD[3]);
    NEXT_COLUMN(t[6]);
    lo += t[7]; hi += lo < t[7];
    NEXT_COLUMN(t[7]);
    t[8] += (uint64_t)lo;
    /* (Σ + m·r) / R < 17r²/R + r < 5r: at most four subtractions */
    while (t[8] || geq_mod(t + 4)) {
        u128 borrow = 0;
        for (int i = 0; i < 4; i++) {
            u128 d = (u128)t[i + 4] - MOD[i] - borrow;
            t[i + 4] = (uint64_t)d;
            borrow = (d >> 64) & 1;
        }
        t[8] -= (uint64_t)borrow;
    }
    memcpy(out->v, t + 4, 32);
}

static inline void fe_mul(fe *out, const fe *a, const fe *b)
{
    dot(out, a, 0, b, 1);
}

static inline void fe_add(fe *out, const fe *a, const fe *b)
{
    u128 carry = 0;
    for (int i = 0; i < 4; i++) {
        u128 s = (u128)a->v[i] + b->v[i] + carry;
        out->v[i] = (uint64_t)s;
        carry = s >> 64;
    }
    /* a + b < 2r < 2^255: no carry out of the top limb */
    if (geq_mod(out->v)) sub_mod_once(out->v);
}

static inline void fe_pow5(fe *x)
{
    fe x2, x4;
    fe_mul(&x2, x, x);
    fe_mul(&x4, &x2, &x2);
    fe_mul(x, &x4, x);
}

/* A canonical little-endian integer below r (the caller reduced it) into Montgomery form. */
static void fe_from_bytes(fe *out, const uint8_t *in)
{
    fe raw, r2;
    memcpy(raw.v, in, 32);
    memcpy(r2.v, R2, 32);
    fe_mul(out, &raw, &r2);
}

static void fe_to_bytes(uint8_t *out, const fe *a)
{
    fe one = {{1, 0, 0, 0}}, plain;
    fe_mul(&plain, a, &one);
    memcpy(out, plain.v, 32);
}

/* The constants of one width t, laid out by native_poseidon.py: a header of two uint64
 * (t, partial rounds), then C (8t + n_p), S (n_p(2t − 1)), M (t·t, row-major as circomlib's
 * M[j][i]) and P (t·t), each element 32 bytes in Montgomery form. */
typedef struct {
    int t, n_p;
    const fe *c, *s, *m, *p;
} params;

static int params_of(const void *const *table, int t, params *out)
{
    if (t < 2 || t > MAX_T || table[t] == NULL) return -1;
    const uint64_t *head = (const uint64_t *)table[t];
    if ((int)head[0] != t) return -1;
    out->t = t;
    out->n_p = (int)head[1];
    out->c = (const fe *)(head + 2);
    out->s = out->c + FULL_ROUNDS * t + out->n_p;
    out->m = out->s + out->n_p * (2 * t - 1);
    out->p = out->m + t * t;
    return 0;
}

/* state ← state · mat (new[i] = Σ_j mat[j][i] · state[j]) */
static void mix(fe *state, const fe *mat, int t)
{
    fe out[MAX_T];
    for (int i = 0; i < t; i++) dot(&out[i], &mat[i], (size_t)t, state, t);
    memcpy(state, out, (size_t)t * sizeof(fe));
}

/* circomlib's Poseidon(t − 1) (PoseidonEx, initial state 0, first output) of in[0..t−1),
 * in the order of splitverify.commit.poseidon. */
static void permute(const params *pp, const fe *in, fe *out)
{
    const int t = pp->t, n_p = pp->n_p, half = FULL_ROUNDS / 2;
    fe state[MAX_T];
    memset(&state[0], 0, sizeof(fe));
    memcpy(&state[1], in, (size_t)(t - 1) * sizeof(fe));
    for (int i = 0; i < t; i++) fe_add(&state[i], &state[i], &pp->c[i]);
    for (int r = 0; r < half; r++) {
        for (int i = 0; i < t; i++) {
            fe_pow5(&state[i]);
            fe_add(&state[i], &state[i], &pp->c[(r + 1) * t + i]);
        }
        mix(state, r == half - 1 ? pp->p : pp->m, t);
    }
    for (int r = 0; r < n_p; r++) {
        const fe *row = pp->s + (size_t)(2 * t - 1) * r;
        fe first = state[0];
        fe_pow5(&first);
        fe_add(&first, &first, &pp->c[(half + 1) * t + r]);
        fe head;
        state[0] = first;
        dot(&head, row, 1, state, t);           /* row[0]·first + Σ row[i]·state[i] */
        for (int i = 1; i < t; i++) {
            fe step;
            fe_mul(&step, &first, &row[t + i - 1]);
            fe_add(&state[i], &state[i], &step);
        }
        state[0] = head;
    }
    for (int r = 0; r < half - 1; r++) {
        for (int i = 0; i < t; i++) {
            fe_pow5(&state[i]);
            fe_add(&state[i], &state[i], &pp->c[(half + 1) * t + n_p + r * t + i]);
        }
        mix(state, pp->m, t);
    }
    for (int j = 0; j < t; j++) fe_pow5(&state[j]);
    dot(out, &pp->m[0], (size_t)t, state, t);   /* the first column of the last mix */
}

/* PoseidonChain of circuits/commit.circom over n ≥ 1 elements, Poseidon(≤ arity) per link.
 * Returns 0, or -1 when the constants of a width it needs were not passed. */
static int chain(const void *const *table, const fe *elems, size_t n, size_t arity, fe *out)
{
    params pp;
    fe in[MAX_T];
    size_t first = n < arity ? n : arity;
    if (params_of(table, (int)first + 1, &pp)) return -1;
    permute(&pp, elems, out);
    for (size_t pos = first; pos < n;) {
        size_t take = n - pos < arity - 1 ? n - pos : arity - 1;
        if (params_of(table, (int)take + 2, &pp)) return -1;
        in[0] = *out;
        memcpy(&in[1], &elems[pos], take * sizeof(fe));
        permute(&pp, in, out);
        pos += take;
    }
    return 0;
}

/* out = Poseidon(in[0..n)) for 1 ≤ n ≤ 16 canonical 32-byte little-endian inputs.
 * Returns 0, or -1 when the constants of width n + 1 were not passed. */
int svpos_hash(const void *const *table, const uint8_t *in, size_t n, uint8_t *out)
{
    params pp;
    fe x[MAX_T], y;
    if (n < 1 || n + 1 > MAX_T || params_of(table, (int)n + 1, &pp)) return -1;
    for (size_t i = 0; i < n; i++) fe_from_bytes(&x[i], in + 32 * i);
    permute(&pp, x, &y);
    fe_to_bytes(out, &y);
    return 0;
}

/* out = PoseidonChain(head ‖ pack(segment 0) ‖ pack(segment 1) ‖ …) with links of at most
 * arity (2 … 16) inputs: head holds n_head
 * canonical 32-byte little-endian elements (the salt and the layout tag of a commitment), the
 * segments' int64 values follow one another in values (lengths[k] of segment k), and a slot
 * is values[i] + offset (offsets[2k] low and offsets[2k + 1] high 64 bits) that must lie in
 * [0, 2^widths[k]), 1 ≤ width ≤ 126; floor(253 / width) slots share an element, the first in
 * the low bits. Returns -1 on success, the index into values of the first slot out of its
 * range, -2 when an argument is outside what this function handles (no element, a width,
 * missing constants, an arity) or -3 when memory ran out. */
long long svpos_commit(const void *const *table, const uint8_t *head, size_t n_head,
                       const int64_t *values, const int64_t *lengths, const int32_t *widths,
                       const uint64_t *offsets, size_t n_seg, size_t arity, uint8_t *out)
{
    size_t n_elems = n_head;
    if (arity < 2 || arity + 1 > MAX_T) return -2;
    for (size_t k = 0; k < n_seg; k++) {
        if (widths[k] < 1 || widths[k] > 126 || lengths[k] < 0 || offsets[2 * k + 1] >> 62)
            return -2;
        size_t per = PACK_BITS / (size_t)widths[k];
        n_elems += ((size_t)lengths[k] + per - 1) / per;
    }
    if (n_elems == 0) return -2;
    fe *elems = malloc(n_elems * sizeof(fe));
    if (!elems) return -3;
    size_t e = 0, at = 0;
    for (; e < n_head; e++) fe_from_bytes(&elems[e], head + 32 * e);
    for (size_t k = 0; k < n_seg; k++) {
        const int width = widths[k];
        const size_t per = PACK_BITS / (size_t)width, len = (size_t)lengths[k];
        const i128 offset = (i128)(((u128)offsets[2 * k + 1] << 64) | offsets[2 * k]);
        const i128 top = (i128)1 << width;
        for (size_t start = 0; start < len; start += per, e++) {
            uint64_t limbs[6] = {0};       /* two spare limbs: a slot's shifted high bits */
            for (size_t j = 0; j < per && start + j < len; j++) {
                const i128 slot = (i128)values[at + start + j] + offset;
                if (slot < 0 || slot >= top) {
                    free(elems);
                    return (long long)(at + start + j);
                }
                const unsigned pos = (unsigned)(width * j), limb = pos / 64, sh = pos % 64;
                const uint64_t lo = (uint64_t)slot, hi = (uint64_t)((u128)slot >> 64);
                limbs[limb] |= lo << sh;
                if (sh) {
                    limbs[limb + 1] |= (lo >> (64 - sh)) | (hi << sh);
                    limbs[limb + 2] |= hi >> (64 - sh);
                } else {
                    limbs[limb + 1] |= hi;
                }
            }
            fe raw, r2;
            memcpy(raw.v, limbs, 32);      /* < 2^253 < r: already canonical */
            memcpy(r2.v, R2, 32);
            fe_mul(&elems[e], &raw, &r2);
        }
        at += len;
    }
    fe result;
    int rc = chain(table, elems, n_elems, arity, &result);
    free(elems);
    if (rc) return -2;
    fe_to_bytes(out, &result);
    return -1;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_poseidon",
    "circomlib's Poseidon and splitverify's packed commitments (called through ctypes).", -1,
    NULL};

PyMODINIT_FUNC PyInit__poseidon(void) { return PyModule_Create(&module); }
