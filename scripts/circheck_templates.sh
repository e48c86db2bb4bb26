#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Static check of the circuit templates with circheck 0.3.0 (pip install circheck==0.3.0, in a
# venv of its own; CIRCHECK=path/to/circheck). Not part of the test suite, because:
#  * circheck's Python (ANTLR) parser does not finish on circomlib's poseidon_constants.circom
#    within 5 minutes here, so DenseOptimized, PoseidonChain and the generated circuits (all use
#    Poseidon) are left out: this runs on Poseidon-free copies of dense.circom and commit.circom;
#  * it crashes (KeyError: '<name>', "Created CDG failed") on whole-array component assignment
#    (`c.in <== arr;`, valid circom 2.2), so the wrappers below assign element by element.
# (matmul.circom and square_chain.circom, benchmark-only, are not included.)
# Findings (triaged): fixedpoint.circom — 3 warnings, all in circomlib IsZero
# (`inv <-- in != 0 ? 1/in : 0`: "assignment misuse", "divide by zero", "nondeterministic data
# flow"): the standard hint, safe because out = 1 − in·inv and in·out = 0 force out; the free inv
# at in = 0 is the one exception of tests/core/circuitgen/test_soundness_audit.py. dense.circom — "unused signal"
# br[k][0] and cr[i][0] in MatMulCheck (declared, never assigned, since column 0 has r[0] = 1):
# they get no witness wire and no constraint, so no soundness effect. No other findings.
set -euo pipefail
cd "$(dirname "$0")/.."
CIRCHECK=${CIRCHECK:-circheck}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp circuits/{fixedpoint,loss,update}.circom "$work"/
cp node_modules/circomlib/circuits/{bitify,comparators,compconstant,aliascheck,binsum}.circom "$work"/
sed -e '/include "poseidon.circom"/d' -e '/^template DenseOptimized/,$d' circuits/dense.circom > "$work/dense.circom"
sed -e '/include "poseidon.circom"/d' -e '/^template PoseidonChain/,$d' circuits/commit.circom > "$work/commit.circom"
cat > "$work/audit.circom" <<'CIRCOM'
pragma circom 2.1.0;
include "fixedpoint.circom";
include "dense.circom";
include "commit.circom";
include "loss.circom";
include "update.circom";
template Audit() {
  signal input a; signal input b; signal input oh[3];
  signal input x[2][3]; signal input w[2][3]; signal input bias[2]; signal input acc[2][2];
  signal input seed; signal input g; signal input logits[2][2]; signal input onehot[2][2];
  signal output o[12];
  component s = SignedRange(4); s.in <== a; o[0] <== s.isNonNeg;
  component r = Rescale(4, 3); r.in <== b;
  component re = ReLU(); re.in <== r.out; re.isNonNeg <== r.isNonNeg; o[1] <== re.out;
  component m = ReluMask(); m.reluOut <== re.out; o[2] <== m.mask;
  component h = OneHot(3); for (var i = 0; i < 3; i++) { h.in[i] <== oh[i]; }
  component dn = DenseNaive(2, 3, 2);
  component dc = DenseCheck(2, 3, 2, 4);
  component cp = ChallengePowers(2);
  for (var t = 0; t < 2; t++) { for (var i = 0; i < 3; i++) {
    dn.x[t][i] <== x[t][i]; dc.x[t][i] <== x[t][i]; dn.w[t][i] <== w[t][i]; dc.w[t][i] <== w[t][i]; } }
  for (var t = 0; t < 2; t++) { for (var j = 0; j < 2; j++) { dc.acc[t][j] <== acc[t][j]; } }
  cp.seed <== seed;
  for (var j = 0; j < 2; j++) { dc.bias[j] <== bias[j]; dc.r[j] <== cp.r[j]; }
  component pk = Pack(3, 8, 128);
  for (var i = 0; i < 3; i++) { pk.in[i] <== x[0][i]; }
  component mse = MseOneHot(2, 2, 8, 4);
  for (var t = 0; t < 2; t++) { for (var c = 0; c < 2; c++) {
    mse.logits[t][c] <== logits[t][c]; mse.onehot[t][c] <== onehot[t][c]; } }
  component sgd = SgdStep(4, 3, 5); sgd.grad <== g;
  o[3] <== dn.acc[0][0]; o[4] <== pk.out[0]; o[5] <== dn.acc[0][1]; o[6] <== mse.loss;
  o[7] <== mse.grad[0][0]; o[8] <== sgd.step; o[9] <== sgd.rem; o[10] <== dn.acc[1][1]; o[11] <== r.out;
}
component main = Audit();
CIRCOM
(cd "$work" && "$CIRCHECK" audit.circom --json report.json > circheck.log 2>&1) || { tail -20 "$work/circheck.log"; exit 1; }
cat "$work/report.json"
