pragma circom 2.1.0;

// Dense layers over a batch: the naive product and a Freivalds check of a claimed product.

include "poseidon.circom";

// acc = X·Wᵀ, one constraint per product (batch·nOut·nIn); the sums are free.
template DenseNaive(batch, nIn, nOut) {
    signal input x[batch][nIn];
    signal input w[nOut][nIn];
    signal output acc[batch][nOut];
    signal prod[batch][nOut][nIn - 1];
    for (var b = 0; b < batch; b++) {
        for (var j = 0; j < nOut; j++) {
            var sum = 0;
            for (var i = 0; i < nIn - 1; i++) {
                prod[b][j][i] <== x[b][i] * w[j][i];
                sum += prod[b][j][i];
            }
            acc[b][j] <== sum + x[b][nIn - 1] * w[j][nIn - 1];
        }
    }
}

// r[k] = seed^k for k < n (r[0] = 1): the challenge vector of a Freivalds check.
template ChallengePowers(n) {
    signal input seed;
    signal output r[n];
    r[0] <== 1;
    for (var k = 1; k < n; k++) {
        r[k] <== r[k - 1] * seed;
    }
}

// Checks the claim c = a·b (rows×inner times inner×cols) by c·r = a·(b·r) for r = (1, ρ, ρ², …).
// Cost inner·(cols−1) + rows·inner + rows·(cols−1) − rows constraints instead of
// rows·inner·cols. Soundness: if c ≠ a·b, some row i has d = (a·b − c)[i] ≠ 0 and the check
// passes only if ρ is a root of Σ_j d_j ρ^j, a non-zero polynomial of degree < cols: at most
// (cols − 1)/p ≤ 2^-243 over the BN254 scalar field (p ≈ 2^253.6) for a ρ fixed after c,
// i.e. after the Fiat–Shamir transcript that hashes c. A prover grinding Q transcripts wins
// with probability ≤ Q·(cols − 1)/p (2^-163 at Q = 2^80). Integers: the caller bounds every
// entry of a, b and c (|·| < p/4), so equality in the field is equality over the integers.
template MatMulCheck(rows, inner, cols) {
    signal input a[rows][inner];
    signal input b[inner][cols];
    signal input c[rows][cols];
    signal input r[cols];
    r[0] === 1;
    signal br[inner][cols];        // b[k][j]·r[j], j ≥ 1
    signal av[rows][inner - 1];    // a[i][k]·(b·r)[k], the last one folded into the check
    signal cr[rows][cols];         // c[i][j]·r[j], j ≥ 1
    var v[inner];
    for (var k = 0; k < inner; k++) {
        v[k] = b[k][0];
        for (var j = 1; j < cols; j++) {
            br[k][j] <== b[k][j] * r[j];
            v[k] += br[k][j];
        }
    }
    for (var i = 0; i < rows; i++) {
        var lhs = 0;
        for (var k = 0; k < inner - 1; k++) {
            av[i][k] <== a[i][k] * v[k];
            lhs += av[i][k];
        }
        var rhs = c[i][0];
        for (var j = 1; j < cols; j++) {
            cr[i][j] <== c[i][j] * r[j];
            rhs += cr[i][j];
        }
        a[i][inner - 1] * v[inner - 1] === rhs - lhs;
    }
}

// Checks acc = X·Wᵀ + biasScale·b (a dense layer before rescale) with MatMulCheck on
// [X | biasScale]·[Wᵀ ; bᵀ]: the bias adds nOut − 1 constraints.
template DenseCheck(batch, nIn, nOut, biasScale) {
    signal input x[batch][nIn];
    signal input w[nOut][nIn];
    signal input bias[nOut];
    signal input acc[batch][nOut];
    signal input r[nOut];
    component check = MatMulCheck(batch, nIn + 1, nOut);
    for (var bt = 0; bt < batch; bt++) {
        for (var i = 0; i < nIn; i++) {
            check.a[bt][i] <== x[bt][i];
        }
        check.a[bt][nIn] <== biasScale;
        for (var j = 0; j < nOut; j++) {
            check.c[bt][j] <== acc[bt][j];
        }
    }
    for (var j = 0; j < nOut; j++) {
        for (var i = 0; i < nIn; i++) {
            check.b[i][j] <== w[j][i];
        }
        check.b[nIn][j] <== bias[j];
        check.r[j] <== r[j];
    }
}

// The optimized dense product on its own (the benchmark's `dense_optimized`): the claimed
// acc = X·Wᵀ is checked against a challenge derived by Poseidon from the commitments of X, W
// and acc. In the split-learning circuits those commitments are computed in the same circuit
// (and shared with the public inputs); here they are inputs, so this counts the product only.
template DenseOptimized(batch, nIn, nOut) {
    signal input x[batch][nIn];
    signal input w[nOut][nIn];
    signal input acc[batch][nOut];
    signal input commitments[3];   // of x, w and acc
    component seed = Poseidon(3);
    for (var i = 0; i < 3; i++) {
        seed.inputs[i] <== commitments[i];
    }
    component powers = ChallengePowers(nOut);
    powers.seed <== seed.out;
    component check = MatMulCheck(batch, nIn, nOut);
    for (var b = 0; b < batch; b++) {
        for (var i = 0; i < nIn; i++) {
            check.a[b][i] <== x[b][i];
        }
        for (var j = 0; j < nOut; j++) {
            check.c[b][j] <== acc[b][j];
        }
    }
    for (var j = 0; j < nOut; j++) {
        for (var i = 0; i < nIn; i++) {
            check.b[i][j] <== w[j][i];
        }
        check.r[j] <== powers.r[j];
    }
}
