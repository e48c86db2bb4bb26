"""``bench``'s figures of the statements on the critical path and of ``pipelined:W`` (issue 18):
a RefNet step in ``commit`` (statements only: what every proving mode pays before any proof)
and in ``pipelined:4`` (every statement proven and verified, proofs made by one background
prover thread per party), and the client's training loop's own seconds per step in each."""

from __future__ import annotations

from collections.abc import Callable

from splitverify.circuitgen import SplitCircuits
from splitverify.pool.threads import background_pool
from splitverify.protocol import ProofMode

# steps per mode: full, quick (pipelined:4 runs past its lag bound, so that the steady state
# where the loop waits for proofs shows in the verified seconds per step)
PIPELINE_RUNS = {"commit": (50, 10), "pipelined:4": (12, 5)}


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def pipeline_step_seconds(circuits: SplitCircuits, quick: bool,
                          progress: Callable[[str], None],
                          new_parties: Callable[[SplitCircuits, ProofMode], tuple]) -> dict:
    """``step_s``: wall seconds per RefNet step (both parties in this process, ``run_local``;
    in ``pipelined:4`` the session's end — every proof delivered and verified — included, so it
    is verified seconds per step). ``training_loop_s``: the mean wall seconds of one step of the
    loop itself, in ``pipelined:4`` over the first 4 steps (before the lag bound can make it
    wait for a proof) and over all steps. ``new_parties``: a fresh session's (client, server)
    of ``bench`` (``local_parties``)."""
    from splitverify_client.training import refnet_batches
    from splitverify.protocol import run_local

    step_s, loop_s = {}, {}
    for text, (full, short) in PIPELINE_RUNS.items():
        n, mode = (short if quick else full), ProofMode.parse(text)
        progress(f"{n} RefNet steps, proof mode {mode}")
        client, server = new_parties(circuits, mode)
        for party in (client, server):
            party.prover.pool = background_pool(mode, circuits) or party.prover.pool
        data = refnet_batches(circuits.spec)
        try:
            result = run_local(client, server, (next(data) for _ in range(n)))
        finally:
            client.prover.pool.close()
            server.prover.pool.close()
        if result.detected is not None or result.steps != n:
            raise RuntimeError(f"the honest {mode} benchmark run stopped: {result.detected}")
        step_s[text] = round(result.seconds / n, 4)
        loop = result.step_seconds
        loop_s[text] = ({"before_lag_bound": _mean(loop[:mode.lag]), "all_steps": _mean(loop)}
                        if mode.kind == "pipelined" else _mean(loop))
    return {"step_s": step_s, "training_loop_s": loop_s,
            "runs": {text: (short if quick else full)
                     for text, (full, short) in PIPELINE_RUNS.items()}}
