pragma circom 2.1.0;

// A convolution layer over a batch, on its own (the benchmark's convolution peer): the naive
// product and a Freivalds check of a claimed product. Shapes as model.Conv2d: per sample the
// input is flat NCHW (inC·H·W), W is outC × (inC·k²) in im2col order, the accumulator is flat
// NCHW (outC·positions), acc = patches·Wᵀ + biasScale·b.

include "dense.circom";

// The flat NCHW input index that tap t (c·k² + i·k + j) reads at output position p, −1 where it
// reads padding: model.layers._patch_index, entry [p, t].
function convTapSource(H, W, k, stride, pad, p, t) {
    var outW = (W + 2 * pad - k) \ stride + 1;
    var c = t \ (k * k);
    var y = (p \ outW) * stride - pad + (t % (k * k)) \ k;
    var x = (p % outW) * stride - pad + t % k;
    if (y < 0 || y >= H || x < 0 || x >= W) {
        return -1;
    }
    return (c * H + y) * W + x;
}

// circomlib-ml's Conv2D shape: one constraint per product (padding taps are none), the sums and
// the bias free. circomlib-ml then divides by its scale with a remainder that is only
// `assert`ed, not constrained (under-constrained); this peer counts the products alone, which
// favours it.
template ConvNaive(batch, inC, outC, H, W, k, stride, pad, biasScale) {
    var P = ((H + 2 * pad - k) \ stride + 1) * ((W + 2 * pad - k) \ stride + 1);
    var T = inC * k * k;
    signal input x[batch][inC * H * W];
    signal input w[outC][T];
    signal input bias[outC];
    signal output acc[batch][outC * P];
    signal prod[batch][outC][P][T];   // the last tap read is folded into acc's constraint
    for (var p = 0; p < P; p++) {
        var last = 0;
        for (var t = 0; t < T; t++) {
            if (convTapSource(H, W, k, stride, pad, p, t) >= 0) {
                last = t;
            }
        }
        for (var b = 0; b < batch; b++) {
            for (var o = 0; o < outC; o++) {
                var sum = biasScale * bias[o];
                for (var t = 0; t < T; t++) {
                    var src = convTapSource(H, W, k, stride, pad, p, t);
                    if (src >= 0 && t != last) {
                        prod[b][o][p][t] <== x[b][src] * w[o][t];
                        sum += prod[b][o][p][t];
                    } else {
                        prod[b][o][p][t] <== 0;
                    }
                }
                acc[b][o * P + p] <== sum + x[b][convTapSource(H, W, k, stride, pad, p, last)]
                                             * w[o][last];
            }
        }
    }
}

// Our forward check of the same job (model.Conv2d's, circuitgen/emit/conv.py): DenseCheck over
// the im2col view (wiring, no constraints), the challenge derived by Poseidon from the
// commitments of x, W and acc. In the split-learning circuits those commitments are computed in
// the same circuit; here they are inputs, so this counts the product's check only.
template ConvOptimized(batch, inC, outC, H, W, k, stride, pad, biasScale) {
    var P = ((H + 2 * pad - k) \ stride + 1) * ((W + 2 * pad - k) \ stride + 1);
    var T = inC * k * k;
    signal input x[batch][inC * H * W];
    signal input w[outC][T];
    signal input bias[outC];
    signal input acc[batch][outC * P];
    signal input commitments[3];   // of x, W and acc
    component seed = Poseidon(3);
    seed.inputs <== commitments;
    component powers = ChallengePowers(outC);
    powers.seed <== seed.out;
    component check = DenseCheck(batch * P, T, outC, biasScale);
    for (var b = 0; b < batch; b++) {
        for (var p = 0; p < P; p++) {
            for (var t = 0; t < T; t++) {
                var src = convTapSource(H, W, k, stride, pad, p, t);
                if (src >= 0) {
                    check.x[b * P + p][t] <== x[b][src];
                } else {
                    check.x[b * P + p][t] <== 0;
                }
            }
            for (var o = 0; o < outC; o++) {
                check.acc[b * P + p][o] <== acc[b][o * P + p];
            }
        }
    }
    check.w <== w;
    check.bias <== bias;
    check.r <== powers.r;
}
