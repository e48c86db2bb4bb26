"""`splitverify bench`: the benchmark suite, one JSON object in the shape of REFERENCE.md.

Every time is the median of several runs taken in this one process, so ratios between
entries are meaningful on a noisy machine. Prove times (``prove_s``) start from a .wtns file:
the witness is excluded there and timed on its own (``witness_s``: node process against the
in-process WASM); a fully proven step (``step_s.every``, ``step_prove_s``) includes both.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from splitverify import zk
from splitverify.circuitgen import KINDS, SplitCircuits, circuit_path, generator, statements
from splitverify.circuitgen.emit import conv
from splitverify.model import Conv2d, SplitSpec
from splitverify.zk.devsetup import dev_setup
from splitverify.zk.r1cs import read_r1cs

from .measure import keyed_circuits, local_parties, machine


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples), 4)


DENSE_SHAPE = (16, 64, 32)  # batch, n_in, n_out: RefNet's client layer


def circuit_constraints(circuits: SplitCircuits) -> dict:
    """Compiled constraint counts of RefNet's three circuits (with their breakdown by what the
    constraints do; ``other`` is what the cost model does not account for) and of the dense
    product alone, naive against optimized."""
    counts, breakdown = {}, {}
    for kind in KINDS:
        total = circuits.circuit(kind).info.n_constraints
        parts = generator.cost_breakdown(circuits.spec, kind)
        parts["other"] = total - sum(parts.values())
        counts[kind], breakdown[kind] = total, parts
    for name, template in (("dense_naive", "DenseNaive"), ("dense_optimized", "DenseOptimized")):
        counts[name] = zk.compile_circuit(circuit_path("dense.circom"), template=template,
                                          params=list(DENSE_SHAPE), optimize="O2"
                                          ).info.n_constraints
    counts["dense_optimized_over_naive"] = round(counts["dense_optimized"] / counts["dense_naive"], 4)
    counts.update(cnn_constraints())
    return {"constraints": counts, "constraint_breakdown": breakdown}


# batch, and the convolution of the naive-vs-optimized comparison: 16 kernels of 3×3 on a 28×28
# image (MNIST's usual first layer); the ratio is ≈ 1/out_channels + 1/(in_channels·k²)
CONV_BENCH_BATCH = 16
CONV_BENCH_LAYER = Conv2d(1, 16, 3, 1, 0, 28, 28, False)


def cnn_constraints() -> dict[str, int | float]:
    """From the cost model (equal to the compiled circuits: tests/core/circuitgen), nothing
    compiled or proven: the reference CNN's three circuits, and one convolution with one
    constraint per product (circomlib-ml's Conv2D) against its Freivalds check (with the
    challenge's Poseidon seed and powers) — at CONV_BENCH_LAYER and at the CNN's own layer."""
    spec = SplitSpec.refcnn()
    counts: dict[str, int | float] = {
        f"cnn_{kind}": sum(generator.cost_breakdown(spec, kind).values()) for kind in KINDS}
    for prefix, layer, batch in (("conv", CONV_BENCH_LAYER, CONV_BENCH_BATCH),
                                 ("cnn_conv", spec.client[0], spec.batch)):
        naive, optimized = conv.conv_naive_cost(layer, batch), conv.conv_optimized_cost(layer, batch)
        counts.update({f"{prefix}_naive": naive, f"{prefix}_optimized": optimized,
                       f"{prefix}_optimized_over_naive": round(optimized / naive, 4)})
    return counts


def refnet_step_inputs(spec: SplitSpec) -> dict[str, dict]:
    """The witness inputs of RefNet's first training step (initial parameters, first batch),
    with fixed salts and session: what the protocol proves in its step 0."""
    from splitverify_client.training import refnet_batches
    from splitverify.refnet import initial_params

    client_params, server_params = initial_params(spec, 0)
    x, labels = next(refnet_batches(spec))
    return statements.step_inputs(spec, client_params, server_params, x, labels,
                                  statements.ClientSalts(11, 12, 13, 14),
                                  statements.ServerSalts(21, 22), session=1, step=0)


# Runs of each RefNet prove/witness measure: full, quick. One snarkjs ClientBackward proof
# takes ~50 s on the 2-core development machine, so these are fewer than the square chain's.
REFNET_RUNS = (3, 1)


def refnet_witness_seconds(circuits: SplitCircuits, inputs: dict[str, dict], runs: int,
                           folder: Path, progress: Callable[[str], None]) -> dict:
    """Median seconds of one witness per backend and circuit: a node process (snarkjs ``wtns
    calculate``, cold every time by nature) against the in-process WASM (warm: its compiled
    module loaded and instance made by a first, untimed run, as in a session)."""
    out: dict[str, dict[str, float]] = {"node": {}, "wasm": {}}
    for kind in KINDS:
        circuit = circuits.circuit(kind)
        for backend in out:
            progress(f"RefNet {kind}: witness with {backend}")

            def one(b=backend, c=circuit, k=kind):
                return zk.calculate_witness(c, inputs[k], folder / f"{k}.{b}.wtns", b)
            if backend == "wasm":
                one()
            out[backend][kind] = _median_seconds(one, runs)
    return out


PROVE_BACKENDS = ("snarkjs", "native", "mcl")


def interleaved_medians(fns: dict[str, Callable[[], object]],
                        runs: int | dict[str, int]) -> dict[str, float]:
    """Median seconds of each function, the functions taking turns run after run, so that a
    change in the machine's load falls on all of them alike; ``runs``: for all, or per name
    (a function with fewer runs sits out the later turns)."""
    per_name = runs if isinstance(runs, dict) else dict.fromkeys(fns, runs)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for turn in range(max(per_name.values())):
        for name, fn in fns.items():
            if turn >= per_name[name]:
                continue
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(times), 4) for name, times in samples.items()}


# The in-process provers (native, mcl) take at least this many turns even in quick mode:
# one sample of a ~0.5 s proof on a shared 2-core machine moves their ratio by ±15 %.
IN_PROCESS_PROVE_RUNS = 3


def refnet_prove_seconds(circuits: SplitCircuits, inputs: dict[str, dict], runs: int,
                         folder: Path, progress: Callable[[str], None]) -> dict:
    """Median seconds of one proof from a .wtns per backend and circuit (witness excluded),
    the backends interleaved. The native and mcl provers load each key before the clocks
    start, as a session does once; every snarkjs proof is a fresh node process that reads the
    .zkey, which is how snarkjs is used."""
    out: dict[str, dict[str, float]] = {backend: {} for backend in PROVE_BACKENDS}
    for kind in KINDS:
        key = circuits.key(kind)
        wtns = zk.calculate_witness(key.circuit, inputs[kind], folder / f"{kind}.wtns")
        zk.get_prover("native").load(key)
        zk.get_prover("mcl").load(key)
        progress(f"RefNet {kind}: proving with {', '.join(PROVE_BACKENDS)} in turn")
        medians = interleaved_medians(
            {backend: lambda p=zk.get_prover(backend), k=key: p.prove(k, wtns)
             for backend in PROVE_BACKENDS}, prove_runs(runs))
        for backend, seconds in medians.items():
            out[backend][kind] = seconds
    return out


def prove_runs(runs: int) -> dict[str, int]:
    """Turns per backend of the RefNet prove measures: snarkjs ``runs``, the in-process ones
    at least IN_PROCESS_PROVE_RUNS."""
    return {backend: runs if backend == "snarkjs" else max(runs, IN_PROCESS_PROVE_RUNS)
            for backend in PROVE_BACKENDS}


def mcl_keys(circuits: SplitCircuits) -> dict:
    """Per RefNet key, what the mcl prover holds loaded: seconds to load it (points to mcl
    structs, FFT tables) and MiB; and the thread count it proves with."""
    prover = zk.get_prover("mcl")
    out = {}
    for kind in KINDS:
        loaded = prover.load(circuits.key(kind))
        out[kind] = {"load_s": round(loaded.load_s, 3),
                     "memory_mib": round(loaded.memory_bytes / 2**20, 1)}
    return {"keys": out, "threads": prover.threads}


def core_us_per_constraint(prove_s: dict[str, dict[str, float]], constraints: dict[str, int],
                           threads: dict[str, int]) -> dict:
    """Proving cost per constraint in core-microseconds (seconds × cores the backend uses)."""
    return {backend: {kind: round(prove_s[backend][kind] * threads[backend] * 1e6
                                  / constraints[kind], 2) for kind in KINDS}
            for backend in prove_s}


def layer_peer(file: str, params: list[int], inputs: dict[str, dict], job: str, runs: int,
               folder: Path, progress: Callable[[str], None]) -> dict:
    """One layer's product proven "circomlib-ml style" (the first template of ``inputs``: one
    constraint per product) against our Freivalds check of the same product (the second), both
    templates of circuits/``file`` at ``params``, each on its witness ``inputs``. Per circuit:
    constraints, key set-up (dev ptau, one contribution), median prove seconds from a .wtns
    with snarkjs (how circomlib-ml circuits are proven) and with our native prover, native
    verify; and our circuit's ratios to the naive one."""
    out: dict[str, dict] = {}
    native = zk.get_prover("native")
    (naive_template, _), (ours_template, _) = inputs.items()
    for name, template in (("circomlib_ml_naive", naive_template),
                           ("splitverify_freivalds", ours_template)):
        progress(f"peer: {template}: key, prove, verify")
        circuit = zk.compile_circuit(circuit_path(file), template=template, params=params,
                                     optimize="O2")
        start = time.perf_counter()
        key = zk.setup(circuit, contributors=("bench",), workdir=folder / template)
        setup_s = time.perf_counter() - start
        wtns = zk.calculate_witness(circuit, inputs[template], folder / f"{template}.wtns")
        native.load(key)
        prove_s = {backend: _median_seconds(
            lambda p=zk.get_prover(backend): p.prove(key, wtns), runs)
            for backend in ("snarkjs", "native")}
        proof, public = native.prove(key, wtns)
        vk = zk.export_verification_key(key)
        if not zk.verify(vk, proof, public, "native"):
            raise RuntimeError(f"the native verifier rejected the {template} benchmark proof")
        out[name] = {"template": template, "constraints": circuit.info.n_constraints,
                     "setup_s": round(setup_s, 3), "prove_s": prove_s,
                     "verify_s": _median_seconds(
                         lambda: zk.verify(vk, proof, public, "native"), runs)}
    naive, ours = out["circomlib_ml_naive"], out["splitverify_freivalds"]
    out["job"] = job
    out["ratios"] = {
        "constraints": round(ours["constraints"] / naive["constraints"], 4),
        "native_prove": round(ours["prove_s"]["native"] / naive["prove_s"]["native"], 4),
        "ours_native_over_naive_snarkjs": round(ours["prove_s"]["native"]
                                                / naive["prove_s"]["snarkjs"], 4)}
    return out


def _field(t) -> list:
    """An integer tensor (1-D or more) as nested lists of field elements (negatives mod r)."""
    from splitverify.zk.curve import R

    return [_field(row) for row in t] if t.dim() > 1 else [int(v) % R for v in t.tolist()]


def dense_layer_peer(runs: int, folder: Path, progress: Callable[[str], None]) -> dict:
    """The dense peer (:func:`layer_peer`): RefNet's client layer product X·Wᵀ (batch 16,
    64 → 32), DenseNaive against DenseOptimized, on RefNet's first batch and initial weights."""
    from splitverify.refnet import initial_params
    from splitverify_client.training import refnet_batches

    spec = SplitSpec.refnet()
    (w, _b), = initial_params(spec, 0)[0]
    x, _labels = next(refnet_batches(spec))
    inputs = {"DenseNaive": {"x": _field(x), "w": _field(w)},
              "DenseOptimized": {"x": _field(x), "w": _field(w), "acc": _field(x @ w.T),
                                 "commitments": [1, 2, 3]}}
    return layer_peer("dense.circom", list(DENSE_SHAPE), inputs,
                      "X·Wᵀ of RefNet's client layer, batch 16, 64 → 32 (first batch, seed-0 "
                      "weights)", runs, folder, progress)


def conv_layer_peer(runs: int, folder: Path, progress: Callable[[str], None]) -> dict:
    """The convolution peer (:func:`layer_peer`): the reference CNN's client layer,
    Conv2d(1→4, 3×3, stride 2, padding 1) on the 8×8 digits, batch 16, with its bias
    (acc = patches·Wᵀ + b·2^s), ConvNaive (circomlib-ml's Conv2D: one constraint per product)
    against ConvOptimized (our forward check), on the first batch and seed-0 weights."""
    from splitverify.refnet import initial_params
    from splitverify_client.training import refnet_batches

    spec = SplitSpec.refcnn()
    layer = spec.client[0]
    (w, b), = initial_params(spec, 0)[0]
    x, _labels = next(refnet_batches(spec))
    _y, acc = layer.forward(spec.quant, x, (w, b))
    naive = {"x": _field(x), "w": _field(w), "bias": _field(b)}
    inputs = {"ConvNaive": naive,
              "ConvOptimized": {**naive, "acc": _field(acc), "commitments": [1, 2, 3]}}
    return layer_peer("conv.circom", conv.peer_template_params(layer, spec.batch, spec.quant.scale),
                      inputs, "patches·Wᵀ + b·2^s of the reference CNN's client layer, "
                      "Conv2d(1→4, 3×3, stride 2, padding 1) on 8×8, batch 16 (first batch, "
                      "seed-0 weights; its ReLU and rescale in neither circuit)", runs, folder,
                      progress)


STEP_RUNS = {"off": (100, 20), "every": (5, 2), "audit:0.1": (50, 10)}   # steps: full, quick


def step_seconds(circuits: SplitCircuits, quick: bool, progress: Callable[[str], None]) -> dict:
    """Mean wall seconds per RefNet step in each proof mode: both parties in this process
    (``run_local``: the same messages and checks as over HTTP, no transport), default prover,
    in-process witness, keys made before the clock starts; the session's one-off set-up (its
    transcript pins the keys' origins, ``setup_s``) is reported apart, not spread over the
    steps. A mean, not a median: in ``audit`` mode the cost is in the few challenged steps.
    Also the mean prove seconds per circuit of the ``every`` run (witness included, as the
    protocol measures them)."""
    from splitverify_client.training import refnet_batches
    from splitverify.protocol import run_local

    spec = circuits.spec
    out, setup_s, prove_in_steps = {}, {}, {}
    for mode, (full, short) in STEP_RUNS.items():
        n = short if quick else full
        progress(f"{n} RefNet steps, proof mode {mode}")
        client, server = local_parties(spec, circuits, mode)
        data = refnet_batches(spec)
        result = run_local(client, server, (next(data) for _ in range(n)))
        if result.detected is not None or result.steps != n:
            raise RuntimeError(f"the honest {mode} benchmark run stopped: {result.detected}")
        out[mode] = round(result.seconds_after_setup / n, 4)
        setup_s[mode] = round(result.setup_seconds, 4)
        if mode == "every":
            prove_in_steps = result.summary()["prove_s"]
    return {"step_s": out, "session_setup_s": setup_s, "step_prove_s": prove_in_steps}


def phase1_seconds(power: int, folder: Path) -> dict[str, float]:
    """The two-party phase 1 at 2^power as two machines run it, one step after the other here:
    the server's start, the client's check of it and contribution, the server's check of that,
    and one phase-2 preparation (each side prepares its own copy, at the same time)."""
    from splitverify.zk import phase1

    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = fn()
        seconds[name] = round(time.perf_counter() - start, 3)
        return result
    timed("start", lambda: phase1.start(power, "server", folder / "server.ptau"))
    timed("verify_server", lambda: phase1.verify(folder / "server.ptau"))
    timed("contribute", lambda: phase1.contribute(folder / "server.ptau", "client",
                                                  folder / "client.ptau"))
    ptau = timed("verify_client", lambda: phase1.verify(folder / "client.ptau"))
    timed("prepare", lambda: phase1.prepare_phase2(ptau, folder / "prepared.ptau"))
    seconds["total"] = round(sum(seconds.values()), 3)
    return seconds


PHASE1_POWERS = (16, 17, 18)


def _per_circuit_ratio(numerator: dict[str, float], denominator: dict[str, float]) -> dict:
    return {name: round(numerator[name] / denominator[name], 3) for name in numerator}


PIPELINE_STEPS_PER_WORKER = (3, 2)     # full, quick


def run_bench(quick: bool = False, progress: Callable[[str], None] = lambda _msg: None,
              ray_address: str | None = "auto") -> dict:
    """The benchmarks; ``ray_address``: the Ray cluster of the ``pipeline`` figure (None: none)."""
    runs = 3 if quick else 7
    refnet_runs = REFNET_RUNS[1] if quick else REFNET_RUNS[0]
    circuits = keyed_circuits(SplitSpec.refnet(), progress)
    circuit_counts = circuit_constraints(circuits)
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
        for backend in PROVE_BACKENDS:
            progress(f"proving with {backend}")
            prover = zk.get_prover(backend)
            proofs[backend] = prover.prove(key, wtns)  # warm-up (key import for native, mcl)
            prove_s[backend] = {"square_chain_2^14": _median_seconds(
                lambda p=prover: p.prove(key, wtns), runs)}
        step_inputs = refnet_step_inputs(circuits.spec)
        witness_s = refnet_witness_seconds(circuits, step_inputs, refnet_runs, Path(tmp), progress)
        for backend, times in refnet_prove_seconds(circuits, step_inputs, refnet_runs, Path(tmp),
                                                   progress).items():
            prove_s[backend].update(times)
        dense_peer = dense_layer_peer(refnet_runs, Path(tmp), progress)
        conv_peer = conv_layer_peer(refnet_runs, Path(tmp), progress)
    mcl = mcl_keys(circuits)
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
    phase1_s = {}
    for power in (10,) if quick else PHASE1_POWERS:
        progress(f"two-party phase 1 + preparation at 2^{power}")
        with tempfile.TemporaryDirectory(prefix="sv-bench-phase1-") as tmp:
            phase1_s[f"2^{power}"] = phase1_seconds(power, Path(tmp))
    steps = step_seconds(circuits, quick, progress)
    from .bench_pipeline import pipeline_step_seconds, pipelined_ratios
    from .bench_pool import pipeline_bench
    pipelined = pipeline_step_seconds(
        circuits, quick, progress, lambda keyed, mode: local_parties(keyed.spec, keyed, mode))
    pipeline = pipeline_bench(circuits, refnet_step_inputs(circuits.spec),
                              PIPELINE_STEPS_PER_WORKER[1 if quick else 0], progress, ray_address)
    progress("peer: EZKL on the ClientForward job (its own SRS, setup, prove, verify)")
    from .peers import ezkl_client_forward
    ezkl = ezkl_client_forward(quick=quick)
    step_s = {**steps["step_s"], **pipelined["step_s"]}
    return {
        "workload": "refnet",
        "batch": 16,
        "machine": machine(),
        "runs": {"prove": runs, "verify": runs, "setup": setup_runs,
                 "refnet_prove": prove_runs(refnet_runs), "refnet_witness": refnet_runs},
        "ratios": {"native_over_snarkjs_prove": _per_circuit_ratio(prove_s["native"],
                                                                   prove_s["snarkjs"]),
                   "mcl_over_native_prove": _per_circuit_ratio(prove_s["mcl"],
                                                               prove_s["native"]),
                   "wasm_over_node_witness": _per_circuit_ratio(witness_s["wasm"],
                                                                witness_s["node"]),
                   "native_over_py_ecc_verify": round(verify_s["native"] / verify_s["py_ecc"], 5),
                   "audit_0.1_over_off_step": round(step_s["audit:0.1"] / step_s["off"], 1),
                   "pipeline_scaling_2_over_1": pipeline["pipeline_scaling_2_over_1"],
                   **pipelined_ratios(step_s, pipelined["training_loop_s"])},
        "bench_circuit": {"name": "SquareChain", "constraints": circuit.info.n_constraints},
        "constraints": {**circuit_counts["constraints"],
                        "square_chain_2^14": circuit.info.n_constraints},
        "constraint_breakdown": circuit_counts["constraint_breakdown"],
        "prove_s": prove_s,
        "prove_s_note": "from a .wtns file: witness excluded (see witness_s)",
        "core_us_per_constraint": core_us_per_constraint(
            prove_s, circuit_counts["constraints"],
            {"snarkjs": os.cpu_count() or 1, "native": 1, "mcl": mcl["threads"]}),
        "mcl_prover": mcl,
        "witness_s": witness_s,
        "verify_s": verify_s,
        "setup_s": {"dev_2^16": setup_s, "dev_2^16_constraints": info.n_constraints},
        "phase1_s": phase1_s,
        "step_s": step_s,
        "session_setup_s": steps["session_setup_s"],
        "step_prove_s": steps["step_prove_s"],
        "pipeline": pipeline["pipeline"],
        "throughput_model": pipeline["throughput_model"],
        "step_runs": {**{mode: (short if quick else full)
                         for mode, (full, short) in STEP_RUNS.items()}, **pipelined["runs"]},
        # the client's training loop's own seconds per step (pipelined:4: before the lag bound
        # binds, and over all steps)
        "training_loop_s": pipelined["training_loop_s"],
        **({"pipelined_grid": pipelined["pipelined_grid"]} if "pipelined_grid" in pipelined
           else {}),
        "peers": {"ezkl_client_forward_prove_s": ezkl["prove_s"], "ezkl_error": ezkl["error"],
                  "ezkl": ezkl, "dense_layer": dense_peer,
                  "conv_layer": conv_peer},
    }


PLOT_CIRCUITS = ("square_chain_2^14", *KINDS)


def plot_bench(result: dict, path: str | Path) -> Path:
    """bench.png from a run_bench result: prove seconds per backend and circuit (witness
    excluded), witness seconds per backend, seconds per RefNet step per proof mode; log scales
    (the entries span four orders of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    model = result.get("throughput_model")
    panels = 4 if model else 3
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.8),
                             gridspec_kw={"width_ratios": [4, 3, 3, 3][:panels]})
    prove_ax, witness_ax, step_ax = axes[:3]
    _grouped_bars(prove_ax, result["prove_s"], PLOT_CIRCUITS,
                  "prove from a .wtns (s)", result["ratios"]["native_over_snarkjs_prove"])
    _grouped_bars(witness_ax, result["witness_s"], KINDS, "witness (s)",
                  result["ratios"]["wasm_over_node_witness"])
    modes = list(result["step_s"])
    step_ax.bar(modes, [result["step_s"][m] for m in modes], color="tab:gray")
    step_ax.set_yscale("log")
    step_ax.set_title("RefNet step, both parties (s)")
    for i, mode in enumerate(modes):
        step_ax.annotate(f"{result['step_s'][mode]:.3g}", (i, result["step_s"][mode]),
                         ha="center", va="bottom", fontsize=8)
    if model:
        _throughput_curve(axes[3], model)
    fig.suptitle(f"splitverify bench — {result['machine']}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput_curve(ax, model: dict) -> None:
    """Verified RefNet steps per second against prover workers: the measured pools (points),
    the model through them and its predictions (dashed, marked as such)."""
    measured = model["checked_against_measured"]
    predicted = model["predictions"]
    workers = sorted([*map(int, measured), *map(int, predicted)])
    steps_per_s = {int(n): c["model"] / len(KINDS) for n, c in measured.items()}
    steps_per_s.update({int(n): p["verified_steps_per_s"] for n, p in predicted.items()})
    ax.plot(workers, [steps_per_s[n] for n in workers], "--", color="tab:gray",
            label="model (predictions past the measured)")
    ax.plot([int(n) for n in measured], [c["measured"] / len(KINDS) for c in measured.values()],
            "o", color="tab:blue", label="measured (local workers)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("prover workers")
    ax.set_title("verified RefNet steps/s")
    ax.legend(fontsize=8)


def _grouped_bars(ax, seconds: dict[str, dict[str, float]], circuits: tuple[str, ...],
                  title: str, ratios: dict[str, float]) -> None:
    """One bar per backend for each circuit, the second-over-first ratio written above."""
    width = 0.8 / len(seconds)
    for offset, (backend, times) in enumerate(seconds.items()):
        xs = [i + (offset - (len(seconds) - 1) / 2) * width for i in range(len(circuits))]
        ax.bar(xs, [times[c] for c in circuits], width, label=backend)
    for i, name in enumerate(circuits):
        top = max(times[name] for times in seconds.values())
        ax.annotate(f"{ratios[name]:.2f}×", (i, top), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(circuits)), [c.replace("_", "\n", 1) for c in circuits], fontsize=8)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
