pragma circom 2.1.0;

// Fixed-point building blocks (the semantics are specified once, in splitverify.quant).
// Signed integers live in the field as p − |x|; every bound below is a bit decomposition
// of bounded width, never an `assert`.

include "bitify.circom";
include "comparators.circom";

// in ∈ [−2^n, 2^n), proven by decomposing in + 2^n into n + 1 bits (n + 2 constraints).
// isNonNeg is the top bit: 1 exactly when in ≥ 0.
template SignedRange(n) {
    signal input in;
    signal output isNonNeg;
    component bits = Num2Bits(n + 1);
    bits.in <== in + (1 << n);
    isNonNeg <== bits.out[n];
}

// out = floor(in / 2^shift) with |out| < 2^valueBits. One decomposition proves both:
//   in + 2^(valueBits+shift) = (out + 2^valueBits)·2^shift + rem,  rem ∈ [0, 2^shift)
// (the low `shift` bits are the remainder, the high valueBits + 1 bits are out + 2^valueBits),
// so rem is range-checked in constraints and out is unique. isNonNeg = (out ≥ 0), the sign a
// ReLU needs, comes from the same bits. Caller: |in| < 2^(valueBits+shift) for honest inputs.
template Rescale(valueBits, shift) {
    signal input in;
    signal output out;
    signal output isNonNeg;
    component bits = Num2Bits(valueBits + 1 + shift);
    bits.in <== in + (1 << (valueBits + shift));
    var high = 0;
    for (var i = 0; i <= valueBits; i++) {
        high += bits.out[shift + i] * (1 << i);
    }
    out <== high - (1 << valueBits);
    isNonNeg <== bits.out[shift + valueBits];
}

// max(in, 0). isNonNeg must come from a bounded decomposition of `in` (SignedRange or
// Rescale): with it the product is the only constraint needed.
template ReLU() {
    signal input in;
    signal input isNonNeg;
    signal output out;
    out <== in * isNonNeg;
}

// The ReLU backward mask, 1 where the ReLU output is positive (the pre-activation was > 0,
// torch's convention at 0): 1 − IsZero(out), two constraints.
template ReluMask() {
    signal input reluOut;
    signal output mask;
    component zero = IsZero();
    zero.in <== reluOut;
    mask <== 1 - zero.out;
}

// A one-hot row: every entry a bit, exactly one set.
template OneHot(n) {
    signal input in[n];
    var total = 0;
    for (var i = 0; i < n; i++) {
        in[i] * (in[i] - 1) === 0;
        total += in[i];
    }
    total === 1;
}
