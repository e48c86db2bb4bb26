"""`bench`'s ``pipeline``: verified proofs per second on prover pools (issue 18), and a model of
throughput for N workers built from the measured per-proof costs.

Each pool proves the same training step's three proofs again and again (each job checked against
its statement and its proof verified, as a party does), once every worker was started and given
every key (``WorkerPool.warm``). Workers prove on one thread each, so N workers use N cores.
The batch goes in largest circuit first: the figure is then the pool's throughput, not the tail
of one batch (in step order, a 6-proof batch on 2 workers ends with one worker proving the last
ClientBackward alone, which alone moves the 2-over-1 ratio between ~1.65 and ~2).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from splitverify.circuitgen import KINDS, SplitCircuits, Statement
from splitverify.errors import ProofError
from splitverify.pool import ProofJob, ProverPool, checked
from splitverify.pool.local import LocalPool, default_size

PREDICT_WORKERS = (8, 32, 128)


def step_statements(circuits: SplitCircuits, inputs: dict[str, dict]) -> dict[str, Statement]:
    """The statement each circuit's inputs make (from their witness, computed here); the
    verification keys are made now too, so that no verification's clock pays their export."""
    for kind in KINDS:
        circuits.verification_key(kind)
    with tempfile.TemporaryDirectory(prefix="sv-bench-pipeline-") as tmp:
        return {kind: circuits.statement_of(kind, circuits.witness(kind, inputs[kind],
                                                                   Path(tmp) / f"{kind}.wtns"))
                for kind in KINDS}


def _prove_all(pool: ProverPool, jobs: list[ProofJob], circuits: SplitCircuits
               ) -> tuple[list[float], list[float]]:
    """Submit all ``jobs`` at once, then take each result as a party does (checked, verified);
    the workers' own seconds per proof and the verification seconds."""
    futures = [(job, pool.submit(job)) for job in jobs]
    worker_s, verify_s = [], []
    for job, future in futures:
        result = checked(job, future.result())
        start = time.perf_counter()
        if not circuits.verify(job.kind, result.proof, job.statement):
            raise ProofError(f"the pool's proof of {job.kind} (job {job.step}) does not verify")
        verify_s.append(time.perf_counter() - start)
        worker_s.append(result.seconds)
    return worker_s, verify_s


def measure_pool(pool, circuits: SplitCircuits, inputs: dict[str, dict],
                 statements: dict[str, Statement], steps: int) -> dict:
    """Verified proofs per second of ``pool`` over ``steps`` repeats of a step's three proofs,
    once each worker has each key."""
    largest_first = sorted(KINDS, key=lambda kind: -circuits.circuit(kind).info.n_constraints)

    def jobs(first: int, count: int) -> list[ProofJob]:
        return [ProofJob(0, kind, first + i, statements[kind], inputs[kind])
                for kind in largest_first for i in range(count)]

    pool.warm(KINDS)
    start = time.perf_counter()
    worker_s, verify_s = _prove_all(pool, jobs(0, steps), circuits)
    wall = time.perf_counter() - start
    per_kind = {kind: round(sum(worker_s[i * steps:(i + 1) * steps]) / steps, 4)
                for i, kind in enumerate(largest_first)}
    return {"workers": pool.size, "proofs": len(worker_s), "seconds": round(wall, 3),
            "verified_proofs_per_s": round(len(worker_s) / wall, 4),
            "worker_prove_s": per_kind, "verify_s": round(statistics.median(verify_s), 5),
            "key_loads": pool.key_loads, "retried": pool.retried,
            "submitted_largest_first": largest_first}


def throughput_model(one: dict, measured: dict[int, dict], cores: int) -> dict:
    """Proofs per second for N workers of one thread each, from one worker's measured costs:
    N·3 / (the three proofs' seconds), capped by what the party does alone per proof (verify),
    with N beyond this machine's cores sharing them."""
    step_s = sum(one["worker_prove_s"].values())
    serial_s = one["verify_s"]

    def model(n: int, cores_available: int) -> float:
        return round(min(min(n, cores_available) * len(KINDS) / step_s, 1 / serial_s), 4)

    checked_against = {
        str(n): {"model": model(n, cores), "measured": m["verified_proofs_per_s"],
                 "measured_over_model": round(m["verified_proofs_per_s"] / model(n, cores), 3)}
        for n, m in measured.items()}
    return {
        "formula": "proofs/s = min(min(N, cores) * 3 / step_prove_s, 1 / verify_s)",
        "step_prove_s": round(step_s, 4), "verify_s": serial_s, "cores_here": cores,
        "checked_against_measured": checked_against,
        "predictions": {str(n): {"verified_proofs_per_s": model(n, n),
                                 "verified_steps_per_s": round(model(n, n) / len(KINDS), 4)}
                        for n in PREDICT_WORKERS},
        "predictions_note": "PREDICTIONS, not measured: N workers each with a core of this "
                            "machine's speed, the party verifying every proof alone",
    }


def pipeline_bench(circuits: SplitCircuits, inputs: dict[str, dict], steps_per_worker: int,
                   progress: Callable[[str], None], ray_address: str | None = "auto") -> dict:
    """``pipeline`` and ``throughput_model`` of ``bench --json``, and the 2-over-1 ratio."""
    statements = step_statements(circuits, inputs)
    load_before = os.getloadavg()
    measured: dict[int, dict] = {}
    for workers in (1, 2):
        progress(f"pipeline: {workers} local prover process(es), one thread each")
        pool = LocalPool(circuits, workers)
        try:
            measured[workers] = measure_pool(pool, circuits, inputs, statements,
                                             steps_per_worker * workers)
        finally:
            pool.close()
    out = {"local": {str(n): m for n, m in measured.items()}}
    if ray_address is not None:
        out["ray"] = _ray_measure(circuits, inputs, statements, steps_per_worker, progress,
                                  ray_address)
    out["load_average"] = {"before": [round(x, 2) for x in load_before],
                           "after": [round(x, 2) for x in os.getloadavg()]}
    out["note"] = ("the same step's three proofs proven again and again, each checked against "
                   "its job and verified; workers prove on one thread each")
    return {"pipeline": out,
            "pipeline_scaling_2_over_1": round(measured[2]["verified_proofs_per_s"]
                                               / measured[1]["verified_proofs_per_s"], 3),
            "throughput_model": throughput_model(measured[1], measured, default_size())}


def _ray_measure(circuits, inputs, statements, steps_per_worker, progress, address) -> dict:
    """Two Ray actors of one CPU each, on the cluster at ``address`` (auto: this machine's)."""
    import ray

    from splitverify.pool.ray_pool import RayPool

    progress(f"pipeline: Ray ({address}), two actors of one thread each")
    started_here = not ray.is_initialized()
    pool = RayPool(circuits, 2, address=address)
    try:
        return {"address": address,
                **measure_pool(pool, circuits, inputs, statements, steps_per_worker * 2)}
    finally:
        pool.close()
        if started_here:
            ray.shutdown()
