# SPDX-License-Identifier: GPL-3.0-or-later
"""Native phase-2 contributions and chain verification (zk.phase2) against snarkjs 0.7.6:
the same hashToG2, keys snarkjs accepts, the contribution hashes snarkjs prints, proofs with a
natively contributed key, and every tampering verify_chain must catch."""

from __future__ import annotations

import json
import re
import secrets
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import MATMUL_INPUTS, expected_matmul_public

from splitverify import zk
from splitverify.errors import InputError, IntegrityError, SetupError
from splitverify.zk import phase2
from splitverify.zk.binfile import BinWriter, read_binfile
from splitverify.zk.ceremony import _parse_hash, contribution_names, dev_ptau_of
from splitverify.zk.curve import R, point_mul, scale_points
from splitverify.zk.snarkjs_rng import ChaCha, fr_from_rng, g1_from_rng, hash_to_g2
from splitverify.zk.toolchain import find_toolchain

pytestmark = pytest.mark.xdist_group("phase2")

BEACON = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"

# hashToG2 and the Fr/G1 samplers of a ChaCha seeded with the same hash, as snarkjs computes them.
NODE_SCRIPT = """
import { getCurveFromName } from "%(snarkjs)s/src/curves.js";
import { hashToG2 } from "%(snarkjs)s/src/keypair.js";
import { ChaCha } from "%(ffjavascript)s/main.js";
const curve = await getCurveFromName("bn128", true);
const out = [];
for (const hex of process.argv.slice(2)) {
  const h = Uint8Array.from(Buffer.from(hex, "hex"));
  const g2 = curve.G2.toObject(curve.G2.toAffine(hashToG2(curve, h)));
  const v = new DataView(h.buffer);
  const rng = new ChaCha([...Array(8).keys()].map(i => v.getUint32(4 * i)));
  const fr = curve.Fr.toObject(curve.Fr.fromRng(rng));
  const g1 = curve.G1.toObject(curve.G1.toAffine(curve.G1.fromRng(rng)));
  out.push({g2: g2.slice(0, 2).map(c => c.map(String)), fr: String(fr),
            g1: g1.slice(0, 2).map(String)});
}
console.log(JSON.stringify(out));
await curve.terminate();
"""


# --- fixtures: one mixed chain snarkjs → native → snarkjs on the matmul circuit ------------------


@pytest.fixture(scope="module")
def initial(matmul_circuit: zk.CompiledCircuit) -> zk.CircuitKey:
    return zk.initial_key(matmul_circuit)


@pytest.fixture(scope="module")
def chain(initial: zk.CircuitKey, tmp_path_factory) -> dict:
    """Keys after each step, and the hash the native contribution reported."""
    work = tmp_path_factory.mktemp("phase2-chain")
    ceremony = zk.Ceremony(initial, work / "snarkjs-1")
    first = ceremony.contribute("snarkjs-alice")
    native, native_hash = phase2.contribute(first, "native-bob", work / "native-2.zkey")
    ceremony = zk.Ceremony(native, work / "snarkjs-3", dev_ptau_of(initial))
    third = ceremony.contribute("snarkjs-carol")
    return {"first": first, "native": native, "native_hash": native_hash, "final": third,
            "work": work}


@pytest.fixture(scope="module")
def snarkjs_report(chain: dict, initial: zk.CircuitKey) -> str:
    """`snarkjs zkey verify` of the whole chain (the one slow call)."""
    return zk.verify_key(chain["final"], dev_ptau_of(initial))


# --- helpers ------------------------------------------------------------------------------------


def sections_of(key: zk.CircuitKey) -> dict[int, bytes]:
    bf = read_binfile(key.zkey, b"zkey")
    return {sid: bytes(bf.section(sid)) for sid in sorted(bf.sections)}


def write_key(base: zk.CircuitKey, sections: dict[int, bytes], path: Path) -> zk.CircuitKey:
    w = BinWriter(b"zkey")
    for sid in sorted(sections):
        w.add(sid, sections[sid])
    path.write_bytes(w.to_bytes())
    return zk.CircuitKey(path, base.circuit, base.ptau_blake2b, base.insecure)


def replace_point(section: bytes, index: int, point: bytes) -> bytes:
    return section[: 64 * index] + point + section[64 * (index + 1):]


def with_delta(header: bytes, delta1: bytes, delta2: bytes) -> bytes:
    return header[:468] + delta1 + delta2


G1_TWO = point_mul("G1", phase2.G1_ONE, 2)


# --- hashToG2 and the samplers ------------------------------------------------------------------


def test_hash_to_g2_and_samplers_match_snarkjs(tmp_path: Path) -> None:
    tc = find_toolchain()
    script = tmp_path / "h2g2.mjs"
    script.write_text(NODE_SCRIPT % {"snarkjs": tc.node_modules / "snarkjs",
                                     "ffjavascript": tc.node_modules / "ffjavascript"})
    hashes = [bytes(64), bytes(range(64))] + [secrets.token_bytes(64) for _ in range(3)]
    proc = subprocess.run([tc.node, str(script), *(h.hex() for h in hashes)],
                          capture_output=True, text=True, timeout=120, check=True)
    for digest, expected in zip(hashes, json.loads(proc.stdout), strict=True):
        g2 = hash_to_g2(digest)
        assert [[str(c) for c in coord] for coord in g2] == expected["g2"], digest.hex()
        rng = ChaCha.from_hash(digest)
        assert str(fr_from_rng(rng)) == expected["fr"]
        assert [str(c) for c in g1_from_rng(rng)] == expected["g1"]


# --- compatibility with snarkjs ------------------------------------------------------------------


def test_mixed_chain_passes_snarkjs_verify(chain: dict, snarkjs_report: str) -> None:
    assert "ZKey Ok!" in snarkjs_report


def test_contribution_hashes_equal_what_snarkjs_prints(chain: dict, initial: zk.CircuitKey,
                                                       snarkjs_report: str) -> None:
    entries = phase2.verify_chain(chain["final"], initial)
    assert [(e.index, e.name, e.kind) for e in entries] == [
        (1, "snarkjs-alice", "contribution"), (2, "native-bob", "contribution"),
        (3, "snarkjs-carol", "contribution")]
    for e in entries:
        assert e.hash == _parse_hash(snarkjs_report, f"contribution #{e.index} {e.name}:")
    assert entries[1].hash == chain["native_hash"]
    # The snarkjs-made steps report the same hashes through the Ceremony as well.
    assert [c.hash for c in chain["final"].transcript] == [e.hash for e in entries]


def test_verify_chain_accepts_every_step(chain: dict, initial: zk.CircuitKey) -> None:
    assert phase2.verify_chain(initial, initial) == []
    assert [e.name for e in phase2.verify_chain(chain["first"], initial)] == ["snarkjs-alice"]
    native = phase2.verify_chain(chain["native"], initial)
    assert native == chain["native"].transcript


def test_native_key_has_snarkjs_layout(chain: dict) -> None:
    native, snarkjs_made = chain["native"], chain["final"]
    assert list(read_binfile(native.zkey, b"zkey").sections) == \
        list(read_binfile(snarkjs_made.zkey, b"zkey").sections) == list(range(1, 11))
    # Section 10 written by snarkjs reads back and re-serialises to the same bytes.
    raw = sections_of(snarkjs_made)[10]
    assert phase2.parse_mpc_params(raw).to_bytes() == raw
    assert contribution_names(native.zkey) == [("snarkjs-alice", 0), ("native-bob", 0)]
    # Everything but δ, L, H and the contributions is copied.
    old, new = sections_of(chain["first"]), sections_of(native)
    for sid in (1, 3, 4, 5, 6, 7):
        assert old[sid] == new[sid]
    assert old[2][:468] == new[2][:468] and old[2][468:] != new[2][468:]


def test_proof_with_native_key_verifies(chain: dict) -> None:
    key = chain["native"]
    proof, public = zk.prove(key, MATMUL_INPUTS)
    assert list(public) == expected_matmul_public()
    assert zk.verify(zk.export_verification_key(key), proof, public)


def test_native_contribution_names(initial: zk.CircuitKey, tmp_path: Path) -> None:
    long_name = "n" * 70
    key, _ = phase2.contribute(initial, long_name, tmp_path / "long.zkey")
    assert contribution_names(key.zkey) == [("n" * 64, 0)]  # snarkjs keeps 64 characters
    assert [c.name for c in key.transcript] == ["n" * 64]
    for bad in ("", "two\nlines", "x" * 256):
        with pytest.raises(InputError):
            phase2.contribute(initial, bad, tmp_path / "bad.zkey")


def test_ceremony_native_option(initial: zk.CircuitKey, tmp_path: Path) -> None:
    ceremony = zk.Ceremony(initial, tmp_path)
    key = ceremony.contribute("native via Ceremony", native=True)
    assert key.zkey.name.endswith("_0001.zkey")
    assert phase2.verify_chain(key, initial) == key.transcript
    with pytest.raises(InputError, match="entropy"):
        ceremony.contribute("again", entropy="abc", native=True)


def test_beacon_checked_natively(chain: dict, initial: zk.CircuitKey, tmp_path: Path) -> None:
    ceremony = zk.Ceremony(chain["native"], tmp_path, dev_ptau_of(initial))
    beaconed = ceremony.beacon(BEACON, 10)
    entries = phase2.verify_chain(beaconed, initial)
    assert entries[-1].kind == "beacon" and entries[-1].name == "final beacon"
    assert entries[-1].hash == beaconed.transcript[-1].hash
    with pytest.raises(SetupError, match="snarkjs zkey verify"):
        phase2.verify_chain(beaconed, initial, max_beacon_iterations_exp=9)


# --- rejections ---------------------------------------------------------------------------------


def _forge(base: zk.CircuitKey, initial: zk.CircuitKey, with_record: bool) -> dict[int, bytes]:
    """δ := z·δ with z known, L and H rescaled consistently; optionally with a contribution
    record whose proof of knowledge is made up (g2_spx is not x·hashToG2(transcript))."""
    s = sections_of(base)
    z = secrets.randbelow(R - 2) + 2
    d1, d2 = point_mul("G1", s[2][468:532], z), point_mul("G2", s[2][532:660], z)
    s[2] = with_delta(s[2], d1, d2)
    z_inv = pow(z, -1, R)
    s[8], s[9] = scale_points("G1", s[8], z_inv), scale_points("G1", s[9], z_inv)
    if with_record:
        params = phase2.parse_mpc_params(s[10])
        g1_s = point_mul("G1", phase2.G1_ONE, secrets.randbelow(R - 1) + 1)
        g1_sx = point_mul("G1", g1_s, z)
        transcript = phase2._transcript(params, g1_s, g1_sx)
        fake = phase2.DeltaContribution(d1, g1_s, g1_sx, point_mul("G2", phase2.G2_ONE, z),
                                        transcript, phase2.CONTRIBUTION, "forger")
        s[10] = phase2.MpcParams(params.cs_hash, (*params.contributions, fake)).to_bytes()
    return s


def _tamper(case: str, key: zk.CircuitKey, initial: zk.CircuitKey) -> dict[int, bytes]:
    s = sections_of(key)
    if case == "L point":
        s[8] = replace_point(s[8], 1, G1_TWO)
    elif case == "H point":
        s[9] = replace_point(s[9], 3, point_mul("G1", s[9][192:256], 2))
    elif case == "L point off the curve":
        s[8] = replace_point(s[8], 0, G1_TWO[:32] + bytes(32))
    elif case == "delta":
        x = secrets.randbelow(R - 2) + 2
        s[2] = with_delta(s[2], point_mul("G1", s[2][468:532], x), point_mul("G2", s[2][532:660], x))
    elif case == "delta2 only":
        s[2] = with_delta(s[2], s[2][468:532], point_mul("G2", s[2][532:660], 2))
    elif case == "IC":
        s[3] = replace_point(s[3], 0, G1_TWO)
    elif case == "A":
        s[5] = replace_point(s[5], 2, G1_TWO)
    elif case == "transcript":
        raw = bytearray(s[10])
        raw[64 + 4 + 64 * 3 + 128] ^= 1  # first byte of the first contribution's transcript
        s[10] = bytes(raw)
    elif case == "forged delta, no record":
        s = _forge(key, initial, with_record=False)
    elif case == "forged contribution":
        s = _forge(key, initial, with_record=True)
    else:
        raise AssertionError(case)
    return s


@pytest.mark.parametrize("case, check", [
    ("L point", "sections 8 and 9"),
    ("H point", "sections 8 and 9"),
    ("L point off the curve", "sections 8 and 9 (L, H) hold G1 points"),
    ("delta", "δ1 equals the last contribution's deltaAfter"),
    ("delta2 only", "e(δ1, G2) = e(G1, δ2)"),
    ("IC", "section 3 (IC)"),
    ("A", "section 5 (A)"),
    ("transcript", "contribution #1 (snarkjs-alice): transcript"),
    ("forged delta, no record", "δ1 equals the last contribution's deltaAfter"),
    ("forged contribution", "contribution #3 (forger): proof of knowledge"),
])
def test_verify_chain_rejects(case: str, check: str, chain: dict, initial: zk.CircuitKey,
                              tmp_path: Path) -> None:
    bad = write_key(chain["native"], _tamper(case, chain["native"], initial), tmp_path / "bad.zkey")
    with pytest.raises(SetupError, match=f"circuit matmul2: .*{re.escape(check)}"):
        phase2.verify_chain(bad, initial)


def test_verify_chain_rejects_a_key_of_another_circuit(other_circuit: zk.CompiledCircuit,
                                                       initial: zk.CircuitKey,
                                                       tmp_path: Path) -> None:
    other, _ = phase2.contribute(zk.initial_key(other_circuit), "x", tmp_path / "other.zkey")
    foreign = zk.CircuitKey(other.zkey, initial.circuit, other.ptau_blake2b, other.insecure)
    with pytest.raises(SetupError, match="circuit hash"):
        phase2.verify_chain(foreign, initial)


def test_verify_chain_rejects_a_truncated_file(chain: dict, initial: zk.CircuitKey,
                                               tmp_path: Path) -> None:
    data = chain["native"].zkey.read_bytes()
    for cut in (len(data) - 100, 40):
        path = tmp_path / f"cut{cut}.zkey"
        path.write_bytes(data[:cut])
        with pytest.raises(IntegrityError, match="truncated"):
            phase2.verify_chain(zk.CircuitKey(path, initial.circuit, "", True), initial)


def test_verify_chain_needs_an_initial_key(chain: dict) -> None:
    with pytest.raises(SetupError, match="not an initial key"):
        phase2.verify_chain(chain["native"], chain["first"])


def test_contribute_refuses_a_malformed_key(initial: zk.CircuitKey, tmp_path: Path) -> None:
    s = sections_of(initial)
    s[10] = s[10] + struct.pack("<I", 7)
    bad = write_key(initial, s, tmp_path / "bad10.zkey")
    with pytest.raises(IntegrityError, match="section 10"):
        phase2.contribute(bad, "x", tmp_path / "out.zkey")
