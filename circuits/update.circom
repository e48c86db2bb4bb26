pragma circom 2.1.0;

// The SGD update of one parameter, exactly as splitverify.quant.sgd_update:
//   out = in − floor(lrNum·grad / 2^shift)
// with grad the un-rescaled gradient accumulator (Freivalds-checked by the caller). One
// decomposition of width valueBits + 1 + shift proves it and bounds the result:
//   in·2^shift − lrNum·grad + 2^shift − 1 + 2^(valueBits+shift) = (out + 2^valueBits)·2^shift + remBar
// where remBar = 2^shift − 1 − (lrNum·grad mod 2^shift) ∈ [0, 2^shift). So |out| < 2^valueBits
// holds for every updated parameter and the remainder is range-checked in constraints.
// remBar is output for the Fiat–Shamir transcript: with in and out committed it pins grad.
include "bitify.circom";

template SgdUpdate(valueBits, shift, lrNum) {
    signal input in;
    signal input grad;
    signal output out;
    signal output remBar;
    component bits = Num2Bits(valueBits + 1 + shift);
    bits.in <== in * (1 << shift) - lrNum * grad + (1 << shift) - 1 + (1 << (valueBits + shift));
    var high = 0;
    for (var i = 0; i <= valueBits; i++) {
        high += bits.out[shift + i] * (1 << i);
    }
    out <== high - (1 << valueBits);
    var low = 0;
    for (var i = 0; i < shift; i++) {
        low += bits.out[i] * (1 << i);
    }
    remBar <== low;
}
