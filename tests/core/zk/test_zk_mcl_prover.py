"""The ``mcl`` prover backend against snarkjs on the same key and witness: both proofs verify
under every verifier and the public signals are identical; plus its own contract (witness in
memory, fresh randomness per proof, any thread count, bad input refused by name)."""

from __future__ import annotations

import pytest

from splitverify import zk
from splitverify.circuitgen import KINDS
from splitverify.errors import InputError, IntegrityError
from splitverify.zk.curve import R
from splitverify.zk.mcl_prover import ENV_MEMORY_MB, ENV_THREADS, MclProver, load_key
from splitverify.zk.witness import read_witness_body


@pytest.fixture(scope="module")
def tiny_vks(tiny_keys):
    return {kind: zk.export_verification_key(tiny_keys.key(kind)) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_mcl_and_snarkjs_agree_on_the_split_circuits(tiny_keys, tiny_witnesses, tiny_vks, kind):
    key, wtns, vk = tiny_keys.key(kind), tiny_witnesses[kind], tiny_vks[kind]
    ours = zk.get_prover("mcl").prove(key, wtns)
    reference = zk.get_prover("snarkjs").prove(key, wtns)
    assert list(ours[1]) == list(reference[1])
    assert zk.verify(vk, *reference, "native")
    for verifier in zk.VERIFIER_NAMES:
        assert zk.verify(vk, *ours, verifier), verifier


def test_mcl_and_snarkjs_agree_on_matmul(matmul_proofs):
    assert list(matmul_proofs["mcl"][1]) == list(matmul_proofs["snarkjs"][1])


def test_witness_in_memory_and_fresh_randomness(tiny_keys, tiny_witnesses, tiny_vks):
    key, wtns, vk = tiny_keys.key("client_forward"), tiny_witnesses["client_forward"], \
        tiny_vks["client_forward"]
    prover = zk.get_prover("mcl")
    from_file = prover.prove(key, wtns)
    in_memory = prover.prove_body(key, read_witness_body(wtns))
    assert list(in_memory[1]) == list(from_file[1])
    assert zk.verify(vk, *in_memory, "native")
    # r and s are drawn per proof: the same witness never gives the same proof twice
    assert in_memory[0].pi_a != from_file[0].pi_a and in_memory[0].pi_c != from_file[0].pi_c


@pytest.mark.parametrize("threads", [1, 3, 8])
def test_any_thread_count_gives_a_valid_proof(tiny_keys, tiny_witnesses, tiny_vks, threads):
    key, wtns = tiny_keys.key("server_step"), tiny_witnesses["server_step"]
    proof, public = MclProver(threads=threads).prove(key, wtns)
    assert zk.verify(tiny_vks["server_step"], proof, public, "native")


def test_witness_of_another_circuit_is_refused(tiny_keys, tiny_witnesses):
    with pytest.raises(InputError, match="witness of another circuit"):
        zk.get_prover("mcl").prove(tiny_keys.key("client_forward"), tiny_witnesses["server_step"])


def test_witness_value_outside_the_field_is_refused(matmul_key, matmul_wtns):
    body = bytearray(read_witness_body(matmul_wtns))
    body[3 * 32:4 * 32] = R.to_bytes(32, "little")
    with pytest.raises(InputError, match="witness value 3 .* not below r"):
        zk.get_prover("mcl").prove_body(matmul_key, bytes(body))


def test_settings_from_the_environment_are_checked(monkeypatch, matmul_key):
    monkeypatch.setenv(ENV_THREADS, "zero")
    with pytest.raises(InputError, match=ENV_THREADS):
        MclProver()
    monkeypatch.setenv(ENV_THREADS, "2")
    monkeypatch.setenv(ENV_MEMORY_MB, "-4")
    with pytest.raises(InputError, match=ENV_MEMORY_MB):
        MclProver()


def test_a_key_over_the_memory_budget_is_refused(matmul_key, matmul_wtns):
    prover = MclProver(memory_budget=1024)
    with pytest.raises(InputError, match="budget"):
        prover.prove(matmul_key, matmul_wtns)
    assert prover.loaded_keys() == []


def test_keys_beyond_the_budget_are_evicted_least_recently_used(tiny_keys):
    first, second, third = (tiny_keys.key(kind) for kind in
                            ("client_forward", "server_step", "client_backward"))
    size = {key.zkey: MclProver().load(key).memory_bytes for key in (first, second, third)}
    prover = MclProver(memory_budget=max(size[first.zkey] + size[second.zkey],
                                         size[first.zkey] + size[third.zkey]))
    prover.load(first)
    prover.load(second)
    prover.load(first)  # now the most recently used: the second goes first
    prover.load(third)
    assert {key.path for key in prover.loaded_keys()} == {str(first.zkey), str(third.zkey)}


def test_a_corrupt_key_is_refused_by_name(matmul_key, tmp_path):
    from splitverify.zk.binfile import read_binfile

    data = bytearray(matmul_key.zkey.read_bytes())
    offset, _size = read_binfile(matmul_key.zkey, b"zkey").sections[5][0]
    data[offset + 64 + 5] ^= 1  # the second A point's x: now off the curve
    bad = tmp_path / "corrupt.zkey"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="A section: point 1 is not on the curve"):
        load_key(bad)


@pytest.mark.parametrize("group_name", ["G1", "G2"])
@pytest.mark.parametrize("bits", [16, 64, 254])
def test_affine_bucket_msm_equals_mcls(group_name, bits):
    """Our multi-exponentiation against mcl's on the same points and scalars, on one thread and
    on two: repeated and opposite points (bucket additions of equal x: doubling and P − P),
    points at infinity, zero scalars, many ones (one hot bucket), small negatives (r − k, the
    negated point) and scalars of the given width."""
    import ctypes
    import random

    from splitverify.zk import curve
    from splitverify.zk.mcl_prover import _native

    rng = random.Random(bits)
    size = curve.group(group_name).point_size
    base = curve.FixedBase(group_name, threads=1).mul_many(
        [rng.randrange(1, R) for _ in range(400)])
    p, minus_p = base[:size], curve.point_mul(group_name, base[:size], R - 1)
    infinity = bytes(size)
    lem = (p + minus_p) * 40 + p * 10 + infinity * 5 + base + base[:300 * size]
    n = len(lem) // size
    scalars = ([7] * 80 + [3] * 10 + [rng.randrange(R) for _ in range(5)]
               + [rng.choice([0, 1, 1, 1, R - 1, R - rng.getrandbits(12)]) for _ in range(300)]
               + [rng.getrandbits(bits) % R for _ in range(n - 395)])
    standard = b"".join(s.to_bytes(32, "little") for s in scalars)
    points = curve._load_points(group_name, lem)
    frs = curve._fr_vector(standard, 32)
    results = set()
    for ours, threads in ((0, 1), (1, 1), (1, 2)):
        out = ctypes.create_string_buffer(3 * curve.group(group_name).coord)
        assert _native().svp_msm(int(group_name == "G2"), points, standard, frs,
                                 ctypes.c_size_t(n), threads, ours, out) == 0
        results.add(curve.struct_to_lem(group_name, out.raw))
    assert len(results) == 1
