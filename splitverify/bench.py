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
    native, snark = prove_s["native"]["square_chain_2^14"], prove_s["snarkjs"]["square_chain_2^14"]
    return {
        "workload": "refnet",
        "batch": 16,
        "machine": machine(),
        "runs": {"prove": runs, "verify": runs, "setup": setup_runs},
        "ratios": {"native_over_snarkjs_prove": round(native / snark, 3),
                   "native_over_py_ecc_verify": round(verify_s["native"] / verify_s["py_ecc"], 5)},
        "bench_circuit": {"name": "SquareChain", "constraints": circuit.info.n_constraints},
        "constraints": {**circuit_counts["constraints"],
                        "square_chain_2^14": circuit.info.n_constraints},
        "constraint_breakdown": circuit_counts["constraint_breakdown"],
        "prove_s": prove_s,
        "verify_s": verify_s,
        "setup_s": {"dev_2^16": setup_s, "dev_2^16_constraints": info.n_constraints},
        "step_s": {"off": None, "every": None, "audit:0.1": None},
        "peers": {"ezkl_client_forward_prove_s": None,
                  "ezkl_error": "not measured yet: the peer benchmark is issue 6's work"},
    }
