"""`splitverify bench`: the benchmark suite, one JSON object in the shape of REFERENCE.md.

Every time is the median of several runs taken in this one process, so ratios between
entries are meaningful on a noisy machine. Fields that later parts of the project fill
(circuit constraints, step times, peers) are present and null until they exist.
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
from .circuits import circuit_path
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


def run_bench(quick: bool = False, progress: Callable[[str], None] = lambda _msg: None) -> dict:
    runs = 3 if quick else 7
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
        "constraints": {"client_forward": None, "server_step": None, "client_backward": None,
                        "dense_naive": None, "dense_optimized": None,
                        "square_chain_2^14": circuit.info.n_constraints},
        "prove_s": prove_s,
        "verify_s": verify_s,
        "setup_s": {"dev_2^16": setup_s, "dev_2^16_constraints": info.n_constraints},
        "step_s": {"off": None, "every": None, "audit:0.1": None},
        "peers": {"ezkl_client_forward_prove_s": None,
                  "ezkl_error": "not measured yet: the peer benchmark is issue 6's work"},
    }
