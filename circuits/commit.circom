pragma circom 2.1.0;

// Poseidon commitments over packed tensors; splitverify.commit computes the same values.

include "poseidon.circom";

// Packs n slot values into ceil(n / per) field elements, per = floor(253 / width), as
// Σ (in[i] + offset)·2^(width·k). Injective only when every in[i] + offset lies in
// [0, 2^width): the caller proves that (a decomposition that bounds the value), and since
// per·width ≤ 253 < log2(p) no element wraps around the field.
template Pack(n, width, offset) {
    var per = 253 \ width;
    var nOut = (n + per - 1) \ per;
    signal input in[n];
    signal output out[nOut];
    for (var e = 0; e < nOut; e++) {
        var acc = 0;
        for (var k = 0; k < per && e * per + k < n; k++) {
            acc += (in[e * per + k] + offset) * (1 << (width * k));
        }
        out[e] <== acc;
    }
}

// Poseidon over a sequence of n ≥ 1 field elements: s = Poseidon(in[0..12)), then
// s = Poseidon(s, next ≤ 11 elements) until the input is used up (arity at most 12).
template PoseidonChain(n) {
    signal input in[n];
    signal output out;
    var first = n < 12 ? n : 12;
    var rest = n - first;
    var nLinks = (rest + 10) \ 11;
    component head = Poseidon(first);
    for (var i = 0; i < first; i++) {
        head.inputs[i] <== in[i];
    }
    component link[nLinks];
    var pos = first;
    for (var l = 0; l < nLinks; l++) {
        var take = n - pos < 11 ? n - pos : 11;
        link[l] = Poseidon(take + 1);
        if (l == 0) {
            link[l].inputs[0] <== head.out;
        } else {
            link[l].inputs[0] <== link[l - 1].out;
        }
        for (var k = 0; k < take; k++) {
            link[l].inputs[k + 1] <== in[pos + k];
        }
        pos += take;
    }
    if (nLinks == 0) {
        out <== head.out;
    } else {
        out <== link[nLinks - 1].out;
    }
}
