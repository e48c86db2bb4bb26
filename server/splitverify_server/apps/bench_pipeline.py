"""``bench``'s figures of the statements on the critical path and of ``pipelined:W`` (issue 18):
RefNet sessions in ``commit`` (statements only: what every proving mode pays before any proof)
and in ``pipelined:W`` (every statement proven and verified), with the client's training
loop's own seconds per step in each.

``pipelined:4`` runs as a user gets it by default: one background prover thread per party. The
full bench adds the grid W = 1, 4, 16 on a local pool of 1 and of 2 worker processes shared by
both parties (one prover thread each), warmed before the clock."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from splitverify.circuitgen import KINDS, SplitCircuits
from splitverify.pool.local import LocalPool
from splitverify.pool.threads import background_pool
from splitverify.protocol import ProofMode

# steps per mode: full, quick (pipelined:4 runs past its lag bound, so that the steady state
# where the loop waits for proofs shows in the verified seconds per step)
PIPELINE_RUNS = {"commit": (50, 10), "pipelined:4": (12, 5)}
GRID_LAGS = (1, 4, 16)
GRID_WORKERS = (1, 2)


def _median(values: list[float]) -> float:
    """The loop's seconds per step: a median, like every time the bench reports (a session's
    first step pays one-off costs — ~50 ms, several times a later step — which a mean over a
    lag bound's few steps would charge to the mode)."""
    return round(statistics.median(values), 4) if values else 0.0


def grid_steps(lag: int) -> int:
    """Steps of a grid run: past the lag bound by 4, and at least 12."""
    return max(12, lag + 4)


def _session(circuits: SplitCircuits, mode: ProofMode, steps: int, pool_of: Callable,
             new_parties: Callable[[SplitCircuits, ProofMode], tuple]) -> dict:
    """One honest session of ``steps`` RefNet steps, each party proving on ``pool_of(party)``:
    verified seconds per step and the training loop's seconds per step."""
    from splitverify_client.training import refnet_batches
    from splitverify.protocol import run_local

    client, server = new_parties(circuits, mode)
    pools = {}
    for party in (client, server):
        pool = pool_of(party)
        if pool is not None:
            party.prover.pool = pools[id(pool)] = pool
    data = refnet_batches(circuits.spec)
    try:
        result = run_local(client, server, (next(data) for _ in range(steps)))
    finally:
        for pool in pools.values():
            pool.close()
    if result.detected is not None or result.steps != steps:
        raise RuntimeError(f"the honest {mode} benchmark run stopped: {result.detected}")
    loop = result.step_seconds
    # verified seconds per step: every step and the end's wait for the last proofs, not the
    # session's one-off set-up (as step_s of the other modes)
    return {"step_s": round(result.seconds_after_setup / steps, 4),
            "training_loop_s": ({"before_lag_bound": _median(loop[:mode.lag]),
                                 "all_steps": _median(loop)}
                                if mode.kind == "pipelined" else _median(loop))}


def pipeline_step_seconds(circuits: SplitCircuits, quick: bool,
                          progress: Callable[[str], None],
                          new_parties: Callable[[SplitCircuits, ProofMode], tuple]) -> dict:
    """``step_s``: wall seconds per RefNet step (both parties in this process, ``run_local``;
    in ``pipelined:W`` the session's end — every proof delivered and verified — included, so it
    is verified seconds per step). ``training_loop_s``: the median wall seconds of one step of
    the loop itself, in ``pipelined:W`` over the first W steps (before the lag bound can make it
    wait for a proof) and over all steps. ``pipelined_grid`` (full bench only): the same for
    W × local workers. ``new_parties``: a fresh session's (client, server) of ``bench``."""
    step_s, loop_s = {}, {}
    for text, (full, short) in PIPELINE_RUNS.items():
        n, mode = (short if quick else full), ProofMode.parse(text)
        progress(f"{n} RefNet steps, proof mode {mode}")
        run = _session(circuits, mode, n, lambda _party: background_pool(mode, circuits),
                       new_parties)
        step_s[text], loop_s[text] = run["step_s"], run["training_loop_s"]
    out = {"step_s": step_s, "training_loop_s": loop_s,
           "runs": {text: (short if quick else full)
                    for text, (full, short) in PIPELINE_RUNS.items()}}
    if not quick:
        out["pipelined_grid"] = pipelined_grid(circuits, progress, new_parties)
    return out


def pipelined_grid(circuits: SplitCircuits, progress: Callable[[str], None],
                   new_parties: Callable[[SplitCircuits, ProofMode], tuple]) -> dict:
    """``{"pipelined:W": {"N": {"steps", "step_s", "verified_steps_per_s",
    "training_loop_s"}}}`` for W in GRID_LAGS and N local worker processes in GRID_WORKERS,
    one pool shared by both parties."""
    grid: dict[str, dict[str, dict]] = {}
    for lag in GRID_LAGS:
        mode, steps = ProofMode.parse(f"pipelined:{lag}"), grid_steps(lag)
        for workers in GRID_WORKERS:
            progress(f"{steps} RefNet steps, proof mode {mode}, {workers} local worker(s)")
            pool = LocalPool(circuits, workers)
            pool.warm(KINDS)
            run = _session(circuits, mode, steps, lambda _party, p=pool: p, new_parties)
            grid.setdefault(str(mode), {})[str(workers)] = {
                "steps": steps, **run, "verified_steps_per_s": round(1 / run["step_s"], 4)}
    return grid


def pipelined_ratios(step_s: dict[str, float], loop_s: dict) -> dict[str, float]:
    """Issue 18's ratios: verified seconds per step of ``pipelined:4`` over ``every`` (≤ 1:
    pipelining never costs throughput), and the training loop's seconds per step in
    ``pipelined:4`` before the lag bound over a ``commit`` step's (≤ 2)."""
    loop = loop_s["pipelined:4"]["before_lag_bound"]
    return {"pipelined_4_over_every_step": round(step_s["pipelined:4"] / step_s["every"], 3),
            "pipelined_4_loop_over_commit_loop": round(loop / loop_s["commit"], 3)}
