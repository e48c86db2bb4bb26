"""`splitverify bench`: the benchmark suite, one JSON object in the shape of REFERENCE.md.

Every time is the median of several runs taken in this one process, so ratios between
entries are meaningful on a noisy machine. Fields that later parts of the project fill (prove
times of the split circuits, step times, peers) are present and null until they exist.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import zk
from .circuits import KINDS, SplitCircuits, circuit_path, generator
from .model import SplitSpec
from .zk.devsetup import dev_setup
from .zk.r1cs import read_r1cs


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples), 4)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


DENSE_SHAPE = (16, 64, 32)  # batch, n_in, n_out: RefNet's client layer


def circuit_constraints(progress: Callable[[str], None] = lambda _msg: None) -> dict:
    """Compiled constraint counts of RefNet's three circuits (with their breakdown by what the
    constraints do; ``other`` is what the cost model does not account for) and of the dense
    product alone, naive against optimized."""
    spec = SplitSpec.refnet()
    circuits = SplitCircuits(spec)
    counts, breakdown = {}, {}
    for kind in KINDS:
        progress(f"compiling RefNet's {kind} circuit")
        total = circuits.circuit(kind).info.n_constraints
        parts = generator.cost_breakdown(spec, kind)
        parts["other"] = total - sum(parts.values())
        counts[kind], breakdown[kind] = total, parts
    for name, template in (("dense_naive", "DenseNaive"), ("dense_optimized", "DenseOptimized")):
        progress(f"compiling {template}{DENSE_SHAPE}")
        counts[name] = zk.compile_circuit(circuit_path("dense.circom"), template=template,
                                          params=list(DENSE_SHAPE), optimize="O2"
                                          ).info.n_constraints
    counts["dense_optimized_over_naive"] = round(counts["dense_optimized"] / counts["dense_naive"], 4)
    return {"constraints": counts, "constraint_breakdown": breakdown}


STEP_RUNS = {"off": (100, 20), "every": (5, 2), "audit:0.1": (50, 10)}   # steps: full, quick


def keyed_circuits(spec: SplitSpec, progress: Callable[[str], None]) -> SplitCircuits:
    """``spec``'s three circuits with their keys made now (compile and development setup come
    from the cache after the first run; the phase-2 contributions are fresh), so that no
    clock started later counts them."""
    circuits = SplitCircuits(spec, contributors=("bench-server", "bench-client"))
    for kind in KINDS:
        progress(f"{kind}: key (compile and dev setup cached after the first run)")
        circuits.key(kind)
    return circuits


def local_parties(spec: SplitSpec, circuits: SplitCircuits, mode: str, *,
                  malicious: str | None = None, seed: int = 0):
    """A fresh session's client and server (for ``run_local``): initial weights of ``seed``,
    the native prover, ``malicious`` played by the side it names."""
    from .demo import check_scenario
    from .protocol import ClientParty, ProofMode, ServerParty, random_field
    from .refnet import initial_params

    client_params, server_params = initial_params(spec, seed)
    session, parsed = random_field(), ProofMode.parse(mode)
    client = ClientParty(spec, session, parsed, client_params, circuits, backend="native",
                         malicious=check_scenario(malicious, "client"))
    server = ServerParty(spec, session, parsed, server_params, circuits, backend="native",
                         malicious=check_scenario(malicious, "server"))
    return client, server


def step_seconds(quick: bool, progress: Callable[[str], None]) -> dict:
    """Mean wall seconds per RefNet step in each proof mode: both parties in this process
    (``run_local``: the same messages and checks as over HTTP, no transport), native prover,
    keys made once before the clock starts. A mean, not a median: in ``audit`` mode the cost
    is in the few challenged steps."""
    from .demo import refnet_batches
    from .protocol import run_local

    spec = SplitSpec.refnet()
    circuits = keyed_circuits(spec, progress)
    out = {}
    for mode, (full, short) in STEP_RUNS.items():
        n = short if quick else full
        progress(f"{n} RefNet steps, proof mode {mode}")
        client, server = local_parties(spec, circuits, mode)
        data = refnet_batches(spec)
        result = run_local(client, server, (next(data) for _ in range(n)))
        if result.detected is not None or result.steps != n:
            raise RuntimeError(f"the honest {mode} benchmark run stopped: {result.detected}")
        out[mode] = round(result.seconds / n, 4)
    return out


def run_bench(quick: bool = False, progress: Callable[[str], None] = lambda _msg: None) -> dict:
    runs = 3 if quick else 7
    circuit_counts = circuit_constraints(progress)
    chain = 16000  # ≈ 2^14 constraints
    progress(f"compiling SquareChain({chain})")
    circuit = zk.compile_circuit(circuit_path("square_chain.circom"), template="SquareChain",
                                 params=[chain])
    progress("trusted setup (dev ptau, one contribution)")
    key = zk.setup(circuit, contributors=("bench",))
    vk = zk.export_verification_key(key)
    inputs = {"x": 3, "k": 5}
    prove_s: dict[str, dict[str, float]] = {}
    proofs = {}
    with tempfile.TemporaryDirectory(prefix="sv-bench-") as tmp:
        wtns = zk.calculate_witness(circuit, inputs, Path(tmp) / "w.wtns")
        for backend in ("snarkjs", "native"):
            progress(f"proving with {backend}")
            prover = zk.get_prover(backend)
            proofs[backend] = prover.prove(key, wtns)  # warm-up (key import for native)
            prove_s[backend] = {"square_chain_2^14": _median_seconds(
                lambda p=prover: p.prove(key, wtns), runs)}
    proof, public = proofs["native"]
    verify_s = {}
    for name in zk.VERIFIER_NAMES:
        progress(f"verifying with {name}")
        verifier = zk.get_verifier(name)
        if not verifier.verify(vk, proof, public):
            raise RuntimeError(f"{name} rejected a valid benchmark proof")
        verify_s[name] = _median_seconds(lambda v=verifier: v.verify(vk, proof, public), runs)

    progress("development setup at 2^16")
    big = zk.compile_circuit(circuit_path("square_chain.circom"), template="SquareChain",
                             params=[65000])
    info, constraints = read_r1cs(big.r1cs, with_constraints=True)

    def one_setup():
        with tempfile.TemporaryDirectory(prefix="sv-bench-setup-") as tmp:
            dev_setup(info, constraints, Path(tmp) / "dev.ptau", Path(tmp) / "k.zkey")

    setup_runs = 1 if quick else 3
    setup_s = _median_seconds(one_setup, setup_runs)
    steps = step_seconds(quick, progress)
    progress("peer: EZKL on the ClientForward job (its own SRS, setup, prove, verify)")
    from .peers import ezkl_client_forward
    ezkl = ezkl_client_forward(quick=quick)
    native, snark = prove_s["native"]["square_chain_2^14"], prove_s["snarkjs"]["square_chain_2^14"]
    return {
        "workload": "refnet",
        "batch": 16,
        "machine": machine(),
        "runs": {"prove": runs, "verify": runs, "setup": setup_runs},
        "ratios": {"native_over_snarkjs_prove": round(native / snark, 3),
                   "native_over_py_ecc_verify": round(verify_s["native"] / verify_s["py_ecc"], 5),
                   "audit_0.1_over_off_step": round(steps["audit:0.1"] / steps["off"], 1)},
        "bench_circuit": {"name": "SquareChain", "constraints": circuit.info.n_constraints},
        "constraints": {**circuit_counts["constraints"],
                        "square_chain_2^14": circuit.info.n_constraints},
        "constraint_breakdown": circuit_counts["constraint_breakdown"],
        "prove_s": prove_s,
        "verify_s": verify_s,
        "setup_s": {"dev_2^16": setup_s, "dev_2^16_constraints": info.n_constraints},
        "step_s": steps,
        "step_runs": {mode: (short if quick else full)
                      for mode, (full, short) in STEP_RUNS.items()},
        "peers": {"ezkl_client_forward_prove_s": ezkl["prove_s"], "ezkl_error": ezkl["error"],
                  "ezkl": ezkl},
    }
