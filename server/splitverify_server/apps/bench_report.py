"""`splitverify bench --report FILE`: a bench result as Markdown — the machine, the targets of
issues 6, 17 and 18 met or missed (ratios first), then the seconds, the pipelined mode and the
pools, and the peers. Everything is read from the result (``run_bench`` or a saved ``--json``);
nothing is typed in by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitverify.circuitgen import KINDS


@dataclass(frozen=True)
class Target:
    label: str
    figure: Callable[[dict], tuple[float, str] | None]   # (value, how it reads) or not measured
    limit: float                                         # met when value ≤ limit
    at_least: bool = False                               # met when value ≥ limit instead
    # why a result has no figure for it
    not_measured: Callable[[dict], str] = lambda _r: "not in this result (it predates it)"

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit


def _worst_ratio(name: str) -> Callable[[dict], tuple[float, str] | None]:
    """The largest of the per-circuit ratios ``ratios[name]``, with all of them listed."""
    def figure(r: dict) -> tuple[float, str] | None:
        ratios = r["ratios"].get(name)
        if not ratios:
            return None
        worst = max(ratios, key=ratios.get)
        listed = ", ".join(f"{circuit} {value:.3f}" for circuit, value in ratios.items())
        return ratios[worst], f"{listed} (worst: {worst})"
    return figure


def _ezkl_ratio(backend: str) -> Callable[[dict], tuple[float, str] | None]:
    """ClientForward's prove seconds with ``backend`` over EZKL's on the same layer."""
    def figure(r: dict) -> tuple[float, str] | None:
        ezkl = r["peers"].get("ezkl_client_forward_prove_s")
        ours = r["prove_s"].get(backend, {}).get("client_forward")
        if ezkl is None or ours is None:
            return None
        return ours / ezkl, f"{ours:.2f} s / {ezkl:.2f} s = {ours / ezkl:.3f}×"
    return figure


def _constraints(kind: str) -> Callable[[dict], tuple[float, str] | None]:
    def figure(r: dict) -> tuple[float, str] | None:
        count = r["constraints"].get(kind)
        return None if count is None else (count, f"{count:,}")
    return figure


def _not_measured_ezkl(r: dict) -> str:
    return f"not measured (the peer did not run: {r['peers'].get('ezkl_error')})"


def _ratio(name: str, text: Callable[[dict], str]
           ) -> Callable[[dict], tuple[float, str] | None]:
    """A ratio of ``ratios`` with how it reads; None (not measured) in a result before it."""
    def figure(r: dict) -> tuple[float, str] | None:
        value = r["ratios"].get(name)
        return None if value is None else (value, text(r))
    return figure


def _commit_step(r: dict) -> tuple[float, str] | None:
    commit = r["step_s"].get("commit")
    return None if commit is None else (commit, f"{commit * 1000:.1f} ms")


def _loop_text(r: dict) -> str:
    loop = r["training_loop_s"]
    ratio = r["ratios"]["pipelined_4_loop_over_commit_loop"]
    return (f"{loop['pipelined:4']['before_lag_bound'] * 1000:.1f} ms / "
            f"{loop['commit'] * 1000:.1f} ms = {ratio}×")


TARGETS = (
    Target("native prove ≤ 0.25 × snarkjs, every circuit",
           _worst_ratio("native_over_snarkjs_prove"), 0.25),
    Target("verify ≤ 5 ms (native verifier)",
           lambda r: (r["verify_s"]["native"], f"{r['verify_s']['native'] * 1000:.1f} ms"),
           0.005),
    Target("ClientForward prove ≤ 0.1 × EZKL prove (same layer)", _ezkl_ratio("native"), 0.1,
           not_measured=_not_measured_ezkl),
    Target("fully proven RefNet step ≤ 2 s (`every`, both parties)",
           lambda r: (r["step_s"]["every"], f"{r['step_s']['every']:.2f} s"), 2.0),
    Target("issue 17's bar: fully proven RefNet step ≤ 3 s",
           lambda r: (r["step_s"]["every"], f"{r['step_s']['every']:.2f} s"), 3.0),
    Target("`mcl` prove ≤ 0.3 × native (groth16py), every circuit",
           _worst_ratio("mcl_over_native_prove"), 0.3),
    Target("ServerStep ≤ 65,536 constraints (a 2^16 domain)", _constraints("server_step"),
           65536),
    Target("ClientBackward ≤ 131,072 constraints (a 2^17 domain)",
           _constraints("client_backward"), 131072),
    Target("ClientForward prove with `mcl` ≤ 0.15 × EZKL prove (same layer)",
           _ezkl_ratio("mcl"), 0.15, not_measured=_not_measured_ezkl),
    Target("`audit:0.1` step ≤ 20 × `off` step",
           lambda r: (r["ratios"]["audit_0.1_over_off_step"],
                      f"{r['step_s']['audit:0.1']:.3g} s / {r['step_s']['off']:.3g} s = "
                      f"{r['ratios']['audit_0.1_over_off_step']:.1f}×"), 20.0),
    Target("statements on the critical path: `commit` step ≤ 20 ms", _commit_step, 0.02),
    Target("prover pool scales: 2 workers ≥ 1.7 × 1 worker (verified proofs/s)",
           _ratio("pipeline_scaling_2_over_1",
                  lambda r: f"{r['ratios']['pipeline_scaling_2_over_1']:.3f}×"), 1.7,
           at_least=True),
    Target("`pipelined:4` verified step ≤ `every` step",
           _ratio("pipelined_4_over_every_step",
                  lambda r: f"{r['step_s']['pipelined:4']:.2f} s / {r['step_s']['every']:.2f} s"
                            f" = {r['ratios']['pipelined_4_over_every_step']}×"), 1.0),
    Target("`pipelined:4` training loop before the lag bound ≤ 2 × `commit`",
           _ratio("pipelined_4_loop_over_commit_loop", _loop_text), 2.0),
)


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _runs_text(runs: int | dict[str, int]) -> str:
    """``3``, or per backend ``(snarkjs 1, native 3, mcl 3)``."""
    if isinstance(runs, dict):
        return "(" + ", ".join(f"{name} {count}" for name, count in runs.items()) + ")"
    return str(runs)


def render(result: dict, plot: str | None = None) -> str:
    r = result
    lines = ["# splitverify bench", "",
             f"**Machine**: {r['machine']}. Every time is a median of runs in one process "
             f"(runs: {', '.join(f'{k} {_runs_text(v)}' for k, v in r.get('runs', {}).items())}); prove "
             "seconds start from a `.wtns` (witness timed on its own).", "",
             "## Targets", ""]
    rows = []
    for target in TARGETS:
        figure = target.figure(r)
        if figure is None:
            rows.append((target.label, target.not_measured(r), "–"))
            continue
        value, text = figure
        rows.append((target.label, text, "met" if target.met(value) else "**missed**"))
    lines += _table(("target", "figure", "met?"), rows)
    lines += ["## Ratios", ""]
    ratios = r["ratios"]
    rows = [(f"native / snarkjs prove: {name}", f"{v:.3f}")
            for name, v in ratios["native_over_snarkjs_prove"].items()]
    rows += [(f"mcl / native prove: {name}", f"{v:.3f}")
             for name, v in ratios.get("mcl_over_native_prove", {}).items()]
    rows += [(f"in-process / node witness: {name}", f"{v:.3f}")
             for name, v in ratios.get("wasm_over_node_witness", {}).items()]
    rows.append(("native / py_ecc verify", f"{ratios['native_over_py_ecc_verify']:.5f}"))
    rows.append(("dense layer constraints, Freivalds / naive",
                 f"{r['constraints']['dense_optimized_over_naive']:.4f}"))
    for peer, label in LAYER_PEERS:
        if r["peers"].get(peer) is not None:
            rows += [(f"{label.lower()} peer: {name.replace('_', ' ')}", f"{v:.4f}")
                     for name, v in r["peers"][peer]["ratios"].items()]
    lines += _table(("ratio", "value"), rows)
    if plot:
        lines += [f"![bench figure]({plot})", ""]
    lines += ["## Seconds", ""]
    witness = r.get("witness_s", {})
    rows = [(name, f"{r['constraints'].get(name, 0):,}",
             _s(witness.get("node", {}).get(name)), _s(witness.get("wasm", {}).get(name)),
             _s(r["prove_s"]["snarkjs"].get(name)), _s(r["prove_s"]["native"].get(name)),
             _s(r["prove_s"].get("mcl", {}).get(name)))
            for name in r["prove_s"]["native"]]
    lines += _table(("circuit", "constraints", "witness node", "witness wasm", "prove snarkjs",
                     "prove native", "prove mcl"), rows)
    if "mcl_prover" in r:
        mcl = r["mcl_prover"]
        lines += [f"The mcl prover ({mcl['threads']} threads) holds each key loaded:", ""]
        lines += _table(("key", "load seconds", "MiB"),
                        [(kind, _s(k["load_s"]), _s(k["memory_mib"]))
                         for kind, k in mcl["keys"].items()])
        lines += _table(("core-µs per constraint", *KINDS),
                        [(backend, *(_s(per_kind[kind]) for kind in KINDS))
                         for backend, per_kind in r["core_us_per_constraint"].items()])
    rows = [(f"RefNet step, `{mode}`", _s(v)) for mode, v in r["step_s"].items()]
    rows += [(f"prove in the `every` steps: {kind}", _s(r.get("step_prove_s", {}).get(kind)))
             for kind in KINDS if kind in r.get("step_prove_s", {})]
    rows += [(f"verify: {name}", _s(v)) for name, v in r["verify_s"].items()]
    rows += [(f"development setup at 2^16 ({r['setup_s'].get('dev_2^16_constraints', '?')} "
              "constraints)", _s(r["setup_s"]["dev_2^16"]))]
    lines += _table(("measure", "seconds"), rows)
    lines += _pipeline_section(r)
    lines += ["## Peers", ""]
    ezkl = r["peers"].get("ezkl") or {}
    if r["peers"].get("ezkl_error"):
        lines += [f"EZKL did not run here: {r['peers']['ezkl_error']}", ""]
    elif ezkl:
        lines += [f"EZKL {ezkl.get('ezkl_version')} — {ezkl.get('job')}; logrows "
                  f"{ezkl.get('logrows')}, proof {ezkl.get('proof_bytes')} bytes.", ""]
        lines += _table(("SRS", "setup", "witness", "prove", "verify"),
                        [tuple(_s(ezkl.get(k)) for k in
                               ("srs_s", "setup_s", "witness_s", "prove_s", "verify_s"))])
    for peer, label in LAYER_PEERS:
        lines += _layer_peer_table(r["peers"].get(peer), label)
    return "\n".join(lines)


# bench's layer peers (bench.layer_peer): key in result["peers"], the report's label
LAYER_PEERS = (("dense_layer", "Dense layer"), ("conv_layer", "Convolution layer"))


def _layer_peer_table(peer: dict | None, label: str) -> list[str]:
    """One layer peer's circuits, naive and ours: constraints, key set-up, prove, verify."""
    if peer is None:
        return [f"The {label.lower()} peer is not in this result (it predates it).", ""]
    return [f"{label} — {peer['job']}:", "", *_table(
        ("circuit", "constraints", "key set-up", "prove snarkjs", "prove native",
         "verify native"),
        [(f"{name} (`{d['template']}`)", f"{d['constraints']:,}", _s(d["setup_s"]),
          _s(d["prove_s"]["snarkjs"]), _s(d["prove_s"]["native"]), _s(d["verify_s"]))
         for name, d in peer.items() if name not in ("job", "ratios")])]


def _pipeline_section(r: dict) -> list[str]:
    """Pipelined proofs and prover pools (issue 18): the training loop, the pools' measured
    throughput, the grid of the full bench, the throughput model and its predictions."""
    if "pipeline" not in r:
        return ["The pipelined mode and the prover pools are not in this result (it predates "
                "them).", ""]
    lines = ["## Pipelined proofs and prover pools", ""]
    loop = r.get("training_loop_s", {})
    rows = [(f"`{mode}`", _s(r["step_s"].get(mode)),
             _s(value if not isinstance(value, dict) else value["before_lag_bound"]),
             "–" if not isinstance(value, dict) else _s(value["all_steps"]))
            for mode, value in loop.items()]
    lines += ["RefNet sessions, both parties in one process (`pipelined:4` with one background "
              "prover thread per party):", ""]
    lines += _table(("mode", "verified seconds per step",
                     "training loop s/step, median (before the lag bound)",
                     "training loop s/step, median (all steps)"), rows)
    pools = r["pipeline"]
    rows = [(f"local, {n} worker(s)", m["proofs"], _s(m["verified_proofs_per_s"]),
             _s(m["verified_proofs_per_s"] / len(KINDS)), m["retried"])
            for n, m in pools["local"].items()]
    if "ray" in pools:
        ray = pools["ray"]
        rows.append((f"Ray ({ray['address']}), {ray['workers']} actors", ray["proofs"],
                     _s(ray["verified_proofs_per_s"]),
                     _s(ray["verified_proofs_per_s"] / len(KINDS)), ray["retried"]))
    load = pools.get("load_average", {})
    lines += [f"Prover pools, {pools.get('note', '')} (load average {load.get('before')} → "
              f"{load.get('after')}):", ""]
    lines += _table(("pool", "proofs", "verified proofs/s", "verified steps/s", "retried"), rows)
    grid = r.get("pipelined_grid")
    if grid:
        lines += ["`pipelined:W` sessions on a local pool shared by both parties:", ""]
        lines += _table(("mode", "workers", "steps", "verified s/step", "verified steps/s",
                         "loop s/step before the lag bound", "loop s/step, all"),
                        [(f"`{mode}`", n, g["steps"], _s(g["step_s"]),
                          _s(g["verified_steps_per_s"]),
                          _s(g["training_loop_s"]["before_lag_bound"]),
                          _s(g["training_loop_s"]["all_steps"]))
                         for mode, by_workers in grid.items() for n, g in by_workers.items()])
    model = r.get("throughput_model")
    if model:
        lines += [f"Throughput model: `{model['formula']}` (step prove {model['step_prove_s']} "
                  f"s, verify {model['verify_s']} s). Checked against the measured pools:", ""]
        lines += _table(("workers", "model proofs/s", "measured", "measured / model"),
                        [(n, _s(c["model"]), _s(c["measured"]), _s(c["measured_over_model"]))
                         for n, c in model["checked_against_measured"].items()])
        lines += [f"**Predictions** ({model['predictions_note']}):", ""]
        lines += _table(("workers", "verified proofs/s", "verified steps/s"),
                        [(n, _s(p["verified_proofs_per_s"]), _s(p["verified_steps_per_s"]))
                         for n, p in model["predictions"].items()])
    return lines


def write_report(result: dict, path: str | Path, plot: str | None = None) -> Path:
    path = Path(path)
    path.write_text(render(result, plot))
    return path
