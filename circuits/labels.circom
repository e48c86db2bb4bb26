pragma circom 2.1.0;

// Labels held by the server (issue 20, --labels server): the label table is a Poseidon Merkle
// tree whose leaf at position id is the label of sample id (splitverify.label_table computes
// the same tree). Positions past the table hold the leaf `classes`, which no one-hot row encodes.

include "poseidon.circom";
include "bitify.circom";

// The root of the depth-`depth` tree that holds `leaf` at position `index`, from the siblings
// on its path. Num2Bits bounds index to [0, 2^depth) and makes each path bit a bit; each bit
// picks which side the running hash goes (left = cur + bit·(sibling − cur), right the other).
template MerkleRoot(depth) {
    signal input leaf;
    signal input index;
    signal input siblings[depth];
    signal output root;
    component bits = Num2Bits(depth);
    bits.in <== index;
    signal level[depth + 1];
    signal left[depth];
    component hash[depth];
    level[0] <== leaf;
    for (var i = 0; i < depth; i++) {
        left[i] <== level[i] + bits.out[i] * (siblings[i] - level[i]);
        hash[i] = Poseidon(2);
        hash[i].inputs[0] <== left[i];
        hash[i].inputs[1] <== level[i] + siblings[i] - left[i];
        level[i + 1] <== hash[i].out;
    }
    root <== level[depth];
}
