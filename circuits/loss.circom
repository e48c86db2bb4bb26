pragma circom 2.1.0;

// MSE on one-hot targets. Its gradient, logits − onehot·2^shift, is exact in fixed point (no
// exp/log approximation); the constant 2/(batch·classes) is folded into the learning rate.

include "bitify.circom";

// grad = logits − onehot·2^shift (linear, free); loss = floor(Σ grad² / 2^shift), the batch's
// summed squared error at scale 2^shift. Caller: |logits| < 2^valueBits (so |grad| < 2^(valueBits+1)),
// onehot rows proven one-hot. The decomposition width bounds Σ grad² for any such input.
template MseOneHot(batch, classes, valueBits, shift) {
    signal input logits[batch][classes];
    signal input onehot[batch][classes];
    signal output grad[batch][classes];
    signal output loss;
    signal sq[batch][classes];
    var sumBits = 2 * (valueBits + 1);
    var n = batch * classes;
    while (n > 1) { sumBits++; n = (n + 1) \ 2; }
    var total = 0;
    for (var b = 0; b < batch; b++) {
        for (var c = 0; c < classes; c++) {
            grad[b][c] <== logits[b][c] - onehot[b][c] * (1 << shift);
            sq[b][c] <== grad[b][c] * grad[b][c];
            total += sq[b][c];
        }
    }
    component bits = Num2Bits(sumBits);
    bits.in <== total;
    var q = 0;
    for (var i = shift; i < sumBits; i++) {
        q += bits.out[i] * (1 << (i - shift));
    }
    loss <== q;
}
