pragma circom 2.1.0;

// The SGD step of one parameter, exactly as splitverify.quant.sgd_update:
//   step = floor(lrNum·grad / 2^shift),   new parameter = old − step
// with grad the un-rescaled gradient accumulator (Freivalds-checked by the caller). One
// decomposition of width stepBits + 1 + shift proves the floor and bounds the step:
//   lrNum·grad + 2^(stepBits+shift) = (step + 2^stepBits)·2^shift + rem,  rem ∈ [0, 2^shift)
// so the remainder is range-checked in constraints and |step| < 2^stepBits. The subtraction is
// the caller's (linear, free): on decoded parameters, or on their packed form — parameters are
// committed in slots of valueBits + 2 bits and stepBits ≤ valueBits, so old − step never borrows
// across slots; the next circuit that decodes the new parameters range-checks them. `rem` goes into the
// Fiat–Shamir transcript: with the old and new parameters committed it pins grad.
include "bitify.circom";

template SgdStep(stepBits, shift, lrNum) {
    signal input grad;
    signal output step;
    signal output rem;
    component bits = Num2Bits(stepBits + 1 + shift);
    bits.in <== lrNum * grad + (1 << (stepBits + shift));
    var high = 0;
    for (var i = 0; i <= stepBits; i++) {
        high += bits.out[shift + i] * (1 << i);
    }
    step <== high - (1 << stepBits);
    var low = 0;
    for (var i = 0; i < shift; i++) {
        low += bits.out[i] * (1 << i);
    }
    rem <== low;
}
