"""Two machines, no trusted third party: the two-party phase 1 (native, byte-compatible with
snarkjs), its refusals, `serve` and `train` with separate caches (two-party and a published
ptau), and why the development ptau is refused across machines (its maker forges proofs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitverify import powersoftau, zk
from splitverify_client import ServerError, SplitClient
from splitverify_server.loopback import ServerThread, free_port
from splitverify.circuitgen import KINDS
from splitverify.errors import SetupError
from splitverify.identity import Identity
from splitverify.powersoftau import PtauPolicy
from splitverify_server import create_app
from splitverify.transcript import Transcript, audit
from splitverify.zk import phase1, phase2
from splitverify.zk.curve import R, FixedBase, point_mul
from splitverify.zk.devsetup import _Secrets, _evaluate_qap, dev_setup, lagrange_at
from splitverify.zk.r1cs import read_r1cs
from splitverify.zk.toolchain import find_toolchain

from conftest import TINY_SPEC, http
from serve_process import ServeProcess

pytestmark = pytest.mark.xdist_group("two_party_ptau")


def snarkjs(*args: str) -> str:
    proc = find_toolchain().run("snarkjs", list(args), check=False)
    return proc.stdout + proc.stderr


# --- phase 1 against snarkjs --------------------------------------------------------------------


def test_two_party_phase1_is_what_snarkjs_verifies_and_prepares(tmp_path):
    """Server starts, client contributes (2^8): `snarkjs powersoftau verify` accepts both files,
    our phase-2 preparation equals `snarkjs powersoftau prepare phase2` byte for byte, and a
    snarkjs contribution on top of ours verifies natively."""
    server, client = tmp_path / "server.ptau", tmp_path / "client.ptau"
    phase1.start(8, "server", server)
    phase1.verify(server)
    phase1.contribute(server, "client", client)
    ptau = phase1.verify(client)
    assert [c.name for c in ptau.contributions] == ["server", "client"]
    for path in (server, client):
        assert "Powers of Tau Ok!" in snarkjs("powersoftau", "verify", str(path))
    phase1.prepare_phase2(ptau, tmp_path / "ours.ptau")
    snarkjs("powersoftau", "prepare", "phase2", str(client), str(tmp_path / "theirs.ptau"))
    assert (tmp_path / "ours.ptau").read_bytes() == (tmp_path / "theirs.ptau").read_bytes()
    snarkjs("powersoftau", "contribute", str(client), str(tmp_path / "third.ptau"),
            "--name=third", "-e=some entropy")
    assert [c.name for c in phase1.verify(tmp_path / "third.ptau").contributions] == [
        "server", "client", "third"]


# --- refusals -----------------------------------------------------------------------------------


def _contribution(previous: Path, out: Path, *, proven: tuple[int, int, int],
                  applied: tuple[int, int, int]) -> None:
    """A client contribution that proves knowledge of the factors ``proven`` but multiplies the
    points by ``applied`` (the honest one has both equal), with consistent hashes."""
    old = phase1.Ptau.read(previous)
    challenge = old.contributions[-1].next_challenge
    keys = []
    for personalization, x in enumerate(proven):
        g1_s = point_mul("G1", phase2.G1_ONE, 7 + personalization)
        g1_sx = point_mul("G1", g1_s, x)
        keys.append(phase1.FactorKey(g1_s, g1_sx, point_mul(
            "G2", phase1._g2_sp(personalization, challenge, g1_s, g1_sx), x)))
    tau, alpha, beta = applied
    n = 1 << old.power
    powers = [pow(tau, i, R) for i in range(2 * n - 1)]
    from splitverify.zk.curve import mul_points
    sections = {2: mul_points("G1", old.sections[2], powers),
                3: mul_points("G2", old.sections[3], powers[:n]),
                4: mul_points("G1", old.sections[4], [alpha * t for t in powers[:n]]),
                5: mul_points("G1", old.sections[5], [beta * t for t in powers[:n]]),
                6: mul_points("G2", old.sections[6], [beta])}
    record = phase1._record(sections, challenge, phase1.PubKey(*keys), "client")
    phase1.Ptau(old.power, sections, [*old.contributions, record]).write(out)


@pytest.fixture()
def server_phase1(tmp_path) -> tuple[zk.ArtifactCache, Path]:
    cache = zk.ArtifactCache(tmp_path / "server-cache")
    path, _ = powersoftau.server_start("a" * 32, 6, tmp_path / "server")
    return cache, path


def _accept(server_phase1, data: bytes, tmp_path: Path) -> zk.PtauFile:
    cache, path = server_phase1
    return powersoftau.server_accept(cache, "a" * 32, "b" * 32, path, data, tmp_path)


def test_an_honest_contribution_is_accepted_and_both_sides_prepare_the_same_file(
        server_phase1, tmp_path):
    client_cache = zk.ArtifactCache(tmp_path / "client-cache")
    upload, mine = powersoftau.client_contribute(client_cache, "a" * 32, "b" * 32,
                                                 server_phase1[1].read_bytes(), 6,
                                                 tmp_path / "client")
    theirs = _accept(server_phase1, upload, tmp_path)
    assert mine.path.read_bytes() == theirs.path.read_bytes() and mine.power == 6
    assert powersoftau.cached(client_cache, "a" * 32, "b" * 32, 5).path == mine.path
    assert powersoftau.cached(client_cache, "a" * 32, "c" * 32, 5) is None   # another pair


def test_a_client_that_skips_its_contribution_is_refused(server_phase1, tmp_path):
    with pytest.raises(SetupError, match="exactly one of the client's"):
        _accept(server_phase1, server_phase1[1].read_bytes(), tmp_path)


def test_a_client_that_reuses_the_servers_contribution_is_refused(server_phase1, tmp_path):
    """Re-sending the server's record as its own fails the proof of knowledge (bound to the
    server's challenge); "contributing" factors of 1 (valid proofs, the server's points) is
    refused as adding nothing."""
    ours = phase1.Ptau.read(server_phase1[1])
    copied = phase1.Ptau(ours.power, ours.sections, [ours.contributions[0]] * 2)
    with pytest.raises(SetupError, match="proof of knowledge"):
        _accept(server_phase1, copied.to_bytes(), tmp_path)
    _contribution(server_phase1[1], tmp_path / "ones.ptau", proven=(1, 1, 1), applied=(1, 1, 1))
    with pytest.raises(SetupError, match="adds no secret"):
        _accept(server_phase1, (tmp_path / "ones.ptau").read_bytes(), tmp_path)


def test_points_that_do_not_match_the_proof_of_knowledge_are_refused(server_phase1, tmp_path):
    _contribution(server_phase1[1], tmp_path / "honest.ptau", proven=(5, 6, 7), applied=(5, 6, 7))
    phase1.verify(tmp_path / "honest.ptau")                    # the helper itself is sound
    for applied, check in (((9, 6, 7), "tau\\*G1 follows"), ((5, 9, 7), "alpha\\*G1 follows"),
                           ((5, 6, 9), "beta\\*G1 follows")):
        bad = tmp_path / "bad.ptau"
        _contribution(server_phase1[1], bad, proven=(5, 6, 7), applied=applied)
        with pytest.raises(SetupError, match=check):
            _accept(server_phase1, bad.read_bytes(), tmp_path)
    # one point of a section off the powers of τ: the batched check finds it
    ptau = phase1.Ptau.read(tmp_path / "honest.ptau")
    g1 = ptau.sections[2]
    ptau.sections[2] = g1[:5 * 64] + point_mul("G1", g1[5 * 64:6 * 64], 3) + g1[6 * 64:]
    record = ptau.contributions[-1]
    challenge = ptau.contributions[0].next_challenge
    ptau.contributions[-1] = phase1._record(ptau.sections, challenge, record.key, "client")
    with pytest.raises(SetupError, match="consecutive powers"):
        _accept(server_phase1, ptau.to_bytes(), tmp_path)
    assert powersoftau.cached(server_phase1[0], "a" * 32, "b" * 32, 1) is None  # nothing kept


def test_mismatched_or_development_ptau_is_refused_at_session_creation(tmp_path):
    files = []
    for name in ("a", "b"):
        phase1.start(4, name, tmp_path / f"{name}.ptau")
        phase1.prepare_phase2(phase1.Ptau.read(tmp_path / f"{name}.ptau"),
                              tmp_path / f"{name}_prepared.ptau")
        files.append(zk.PtauFile.open(tmp_path / f"{name}_prepared.ptau"))
    cases = ((PtauPolicy("published", files[0]), PtauPolicy("published", files[1]), "sha256"),
             (PtauPolicy("two-party"), PtauPolicy("development"), "forge any proof"),
             (PtauPolicy("published", files[0]), PtauPolicy("two-party"), "two-party"))
    for server_policy, client_policy, said in cases:
        with ServerThread(create_app(ptau=server_policy)) as thread:
            client = SplitClient(thread.url, spec=TINY_SPEC, ptau=client_policy)
            with pytest.raises(ServerError, match=said):
                client.create_session()


def test_a_party_id_other_than_the_clients_identity_is_refused():
    """The pair a phase 1 is cached under is the two identity keys: a client cannot take another
    party's place in it by naming that party's id."""
    class Impostor(SplitClient):
        def _request_body(self) -> dict:
            return {**super()._request_body(), "party_id": Identity.generate().address}

    with ServerThread(create_app(ptau=PtauPolicy("two-party"))) as thread:
        with pytest.raises(ServerError, match="not its client_identity"):
            Impostor(thread.url, spec=TINY_SPEC, ptau=PtauPolicy("two-party")).create_session()


def test_development_ptau_on_both_sides_is_accepted_when_both_say_so():
    """`serve --insecure-dev-ptau` with `train --insecure-dev-ptau` (one machine): the server
    announces its development ptau, the client agrees, the keys are made."""
    with ServerThread(create_app(ptau=PtauPolicy("development"))) as thread:
        client = SplitClient(thread.url, spec=TINY_SPEC, ptau=PtauPolicy("development"))
        client.create_session()
        assert client.ptau["record"] is None and set(client.keys) == set(KINDS)


@pytest.mark.parametrize("args,message", [
    (("--ptau", "{ptau}", "--insecure-dev-ptau"), "exclude each other"),
    (("--ptau", "{missing}"), "does not exist"),
    (("--ptau", "{unprepared}"), "not prepared for phase 2"),
])
def test_ptau_options_are_checked_before_anything_runs(tmp_path, args, message):
    from typer.testing import CliRunner

    from splitverify.cli import app

    phase1.start(2, "server", tmp_path / "unprepared.ptau")
    phase1.prepare_phase2(phase1.Ptau.read(tmp_path / "unprepared.ptau"), tmp_path / "p.ptau")
    paths = {"ptau": tmp_path / "p.ptau", "missing": tmp_path / "none.ptau",
             "unprepared": tmp_path / "unprepared.ptau"}
    filled = [a.format(**paths) for a in args]
    for command in (["serve", "--db", str(tmp_path / "s.db")],
                    ["train", "--server", "http://127.0.0.1:9", "--out", str(tmp_path)]):
        result = CliRunner().invoke(app, [*command, *filled])
        assert result.exit_code == 1 and message in " ".join(result.output.split()), \
            (command, result.output)
    layers = CliRunner().invoke(app, ["train", "--server", "http://127.0.0.1:9",
                                      "--client-layers", "4:3:tanh", "--server-layers", "3:2"])
    assert layers.exit_code == 1 and "N_IN:N_OUT:relu" in layers.output


# --- why not the development ptau: its maker forges proofs --------------------------------------


def test_whoever_made_the_development_ptau_forges_a_proof_that_verifies(matmul_circuit, tmp_path):
    """The server makes the development ptau (so knows τ, α, β); the client adds its phase-2
    contribution (δ the server never learns). From τ and the key's first H point the server gets
    [1/δ]G1, and proves a false statement: public outputs nobody computed."""
    secrets_ = _Secrets.draw()
    info, constraints = read_r1cs(matmul_circuit.r1cs, with_constraints=True)
    dev_setup(info, constraints, tmp_path / "dev.ptau", tmp_path / "initial.zkey",
              _secrets=secrets_)
    initial = zk.CircuitKey(tmp_path / "initial.zkey", matmul_circuit, "", True)
    key, _ = phase2.contribute(initial, "client", tmp_path / "final.zkey")
    vk = zk.export_verification_key(key)

    tau, alpha, beta = secrets_.tau, secrets_.alpha, secrets_.beta
    dp, pp = info.domain_power, info.ptau_power
    h0_scalar = lagrange_at(tau, dp + 1, truncated=dp == pp)[1]    # H_0 = h0_scalar/δ · G1
    from splitverify.zk.binfile import read_binfile
    h0 = bytes(read_binfile(key.zkey, b"zkey").section(9))[:64]
    inv_delta_g1 = point_mul("G1", h0, pow(h0_scalar, -1, R))
    u, v, w = _evaluate_qap(info, constraints, lagrange_at(tau, dp))
    public = [12345, 67890, 42, 7][: info.n_public]               # a statement nobody proved
    ic = (beta * u[0] + alpha * v[0] + w[0]) + sum(
        x * (beta * u[i] + alpha * v[i] + w[i]) for i, x in enumerate(public, start=1))
    a, b = 11, 13
    g1 = FixedBase("G1")
    pi_a = g1.mul_many([a])
    pi_b = FixedBase("G2").mul_many([b])
    pi_c = point_mul("G1", inv_delta_g1, (a * b - alpha * beta - ic) % R)
    from splitverify.zk.curve import g1_lem_to_affine, g2_lem_to_affine
    proof = zk.Proof(pi_a=g1_lem_to_affine(pi_a), pi_b=g2_lem_to_affine(pi_b),
                     pi_c=g1_lem_to_affine(pi_c))
    statement = zk.PublicSignals(tuple(public))
    for verifier in zk.VERIFIER_NAMES:
        assert zk.verify(vk, proof, statement, verifier), verifier
    # and the same forgery fails without τ: a wrong guess of it gives a proof that is refused
    wrong = point_mul("G1", h0, pow(lagrange_at(tau + 1, dp + 1, truncated=dp == pp)[1], -1, R))
    bad_c = point_mul("G1", wrong, (a * b - alpha * beta - ic) % R)
    assert not zk.verify(vk, proof.model_copy(update={"pi_c": g1_lem_to_affine(bad_c)}),
                         statement)


# --- serve and train on two "machines" ----------------------------------------------------------


def serve(tmp: Path, cache: Path, *options: str) -> ServeProcess:
    """`splitverify serve` with its own cache (another machine: no development ptau)."""
    return ServeProcess(tmp / "server.db", free_port(), *options, dev_ptau=False,
                        env={"SPLITVERIFY_CACHE": str(cache)}).start()


def _machine(root: Path, compiled_from: Path) -> Path:
    """A party's own cache, seeded with the compiled tiny circuits and witness calculators only
    (compiling is not what is tested; nothing of the setup is shared). Hidden entries are builds
    another test worker has in progress (renamed into place when done): not copied, since they
    can vanish mid-copy."""
    root.mkdir(parents=True)
    for kind in ("circuit", "wasmtime"):
        if (compiled_from / kind).is_dir():
            shutil.copytree(compiled_from / kind, root / kind,
                            ignore=lambda _dir, names: [n for n in names if n.startswith(".")])
    return root


def _train(url: str, cache: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`splitverify train` on the client's machine: its cache, its identity key beside it."""
    env = {**os.environ, "SPLITVERIFY_CACHE": str(cache)}
    args = ("--identity", str(cache.parent / "client.identity"), *args)
    return subprocess.run(
        [sys.executable, "-m", "splitverify", "train", "--server", url, "--steps", "2",
         "--proof-mode", "every", "--client-layers", "4:3:relu", "--server-layers", "3:2",
         "--batch", "2", "--out", str(out), *args],
        capture_output=True, text=True, timeout=900, env=env)


def _check_session(out: Path, origin: str) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["verified"] and not summary["detected"]
    transcript = Transcript.load(out / "transcript.json")
    report = audit(transcript)
    assert report.valid, report.reason
    assert set(transcript.ptau) == {"sha256", "power", "origin", "name"}
    assert transcript.ptau["origin"] == origin and transcript.ptau["power"] >= 12
    return transcript.ptau


@pytest.fixture()
def tiny_compiled(tiny_circuits, isolated_cache: Path) -> Path:
    for kind in ("client_forward", "server_step", "client_backward"):
        tiny_circuits.circuit(kind)
    return isolated_cache


def test_serve_and_train_on_two_machines_with_a_two_party_phase1(tmp_path, tiny_compiled):
    """Separate caches, no shared file: the first session runs the phase 1 (both sides hold the
    same prepared ptau, neither alone knows τ), a second session of the pair reuses it, and the
    first session's finished keys."""
    server_cache = _machine(tmp_path / "server-cache", tiny_compiled)
    client_cache = _machine(tmp_path / "client-cache", tiny_compiled)
    server = serve(tmp_path, server_cache)
    try:
        first = _train(server.url, client_cache, tmp_path / "first")
        assert first.returncode == 0, first.stdout + first.stderr
        second = _train(server.url, client_cache, tmp_path / "second")
        assert second.returncode == 0, second.stdout + second.stderr
    finally:
        server.stop()
    record = _check_session(tmp_path / "first", "two-party")
    assert _check_session(tmp_path / "second", "two-party") == record
    # the second session of the pair also reuses the first one's finished keys (issue 19)
    first_id = json.loads((tmp_path / "first" / "summary.json").read_text())["session_id"]
    keys = json.loads((tmp_path / "second" / "summary.json").read_text())["key_ceremony"]
    assert keys["ceremony"] == [] and set(keys["reused_from"].values()) == {first_id}, keys
    prepared = {side: list((cache / "phase1").glob("*/prepared.ptau"))
                for side, cache in (("server", server_cache), ("client", client_cache))}
    assert len(prepared["server"]) == len(prepared["client"]) == 1      # made once, reused
    assert powersoftau.sha256_file(prepared["server"][0]) == record["sha256"] == \
        powersoftau.sha256_file(prepared["client"][0])
    names = [c.name for c in phase1.Ptau.read(prepared["client"][0]).contributions]
    assert [n.split()[0] for n in names] == ["server", "client"]
    # the pair is the two identity keys: the server's (<db>.identity) and the client's
    server_key = Identity.load_or_create(f"{tmp_path / 'server.db'}.identity").address
    client_key = Identity.load_or_create(tmp_path / "client.identity").address
    assert names == [f"server {server_key}", f"client {client_key}"]
    assert powersoftau.cached(zk.ArtifactCache(client_cache), server_key, client_key, 1) is not None
    assert not (server_cache / "setup").exists() or not list(
        (server_cache / "setup").glob("*/dev.ptau"))                   # no development ptau


@pytest.fixture(scope="module")
def published_ptau(tmp_path_factory) -> Path:
    """A published-format ptau at 2^12: a ceremony run by snarkjs (new, contribute), prepared
    natively (byte for byte what `snarkjs powersoftau prepare phase2` writes: tested above at
    2^8; snarkjs takes minutes at 2^12 on a loaded 2-core machine)."""
    d = tmp_path_factory.mktemp("published")
    snarkjs("powersoftau", "new", "bn128", "12", str(d / "p0.ptau"))
    snarkjs("powersoftau", "contribute", str(d / "p0.ptau"), str(d / "p1.ptau"),
            "--name=ceremony", "-e=published ceremony entropy")
    return phase1.prepare_phase2(phase1.verify(d / "p1.ptau"), d / "final.ptau")


def test_serve_and_train_on_two_machines_with_a_published_ptau(tmp_path, tiny_compiled,
                                                                published_ptau):
    server_cache = _machine(tmp_path / "server-cache", tiny_compiled)
    client_cache = _machine(tmp_path / "client-cache", tiny_compiled)
    theirs = tmp_path / "server-copy.ptau"
    shutil.copyfile(published_ptau, theirs)                # each side holds its own copy
    server = serve(tmp_path, server_cache, "--ptau", str(theirs))
    try:
        done = _train(server.url, client_cache, tmp_path / "run", "--ptau", str(published_ptau))
        assert done.returncode == 0, done.stdout + done.stderr
        refused = _train(server.url, client_cache, tmp_path / "refused")   # two-party client
    finally:
        server.stop()
    record = _check_session(tmp_path / "run", "published")
    assert record["sha256"] == powersoftau.sha256_file(published_ptau)
    assert record["name"] == "server-copy.ptau" or record["name"] == published_ptau.name
    said = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 1 and "both must use the same one" in said


def test_a_multi_exponentiation_past_mcls_stack_limit_is_cut_into_calls():
    """mcl's mulVec overflows its thread's stack at 2^17 G2 points per call (the phase 1 at 2^17
    crashed there): msm cuts such sums into calls it survives, and the sum is still right."""
    from splitverify.zk import curve

    n = 1 << 17
    scalars = [int.from_bytes(os.urandom(16), "little") for _ in range(n)]
    generator = curve.struct_to_lem("G2", curve.group("G2").generator)
    total = curve.msm("G2", generator * n, b"".join(s.to_bytes(16, "little") for s in scalars),
                      16)
    assert curve.struct_to_lem("G2", total) == point_mul("G2", generator, sum(scalars) % R)
