"""Peer benchmarks: the job of our ClientForward proof proved by another zkML system, in this
process, for `splitverify bench`.

The job: RefNet's client half, Linear(64→32) + ReLU, on the first 16 training samples of
scikit-learn's digits, with RefNet's initial weights (seed 0, as in `splitverify demo`); input
and weights private, output public. The float model gets the fixed-point weights decoded
(k / 2^16, exact in float32), so both systems compute on the same numbers.

EZKL (halo2 with KZG) picks its own fixed-point scale, so its outputs are compared to our
reference (`model.client_forward` at 16 fractional bits) in real units, never bit for bit.
EZKL's "private" binds no commitment to the weights or the data, where ClientForward also
proves Poseidon commitments to both: the comparison is of the arithmetic, and it favours EZKL.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from splitverify import model, refnet
from splitverify.model import Params, SplitSpec

EZKL_TIMES = ("compile_s", "srs_s", "setup_s", "witness_s", "prove_s", "verify_s")
JOB = ("RefNet client forward: Linear(64->32) + ReLU, batch 16, first 16 digits training "
       "samples, initial weights (seed 0); input private, weights private, output public")
# EZKL's own default scale (PyRunArgs().input_scale): the quick run calibrates only that one.
EZKL_DEFAULT_SCALE = 7
ONNX_OPSET = 18  # EZKL's ONNX reader (tract) is tested on opsets 9 to 18; torch's default is 20


@dataclass(frozen=True)
class ClientForwardJob:
    spec: SplitSpec
    params: Params      # the client's (W, b), int64 at 2^frac_bits
    x: torch.Tensor     # the data batch, real units, batch × features
    labels: torch.Tensor

    def torch_model(self) -> torch.nn.Sequential:
        """The client half in float32, holding exactly the fixed-point weights."""
        (w, b), = self.params
        layer = torch.nn.Linear(self.spec.features, self.spec.cut_width)
        with torch.no_grad():
            layer.weight.copy_(self.spec.quant.decode(w).float())
            layer.bias.copy_(self.spec.quant.decode(b).float())
        return torch.nn.Sequential(layer, torch.nn.ReLU()).eval()

    def reference_output(self) -> torch.Tensor:
        """Our integer reference of the cut activations, decoded to real units."""
        q = self.spec.quant
        fwd = model.client_forward(self.spec, self.params, q.encode(self.x, data=True),
                                   self.labels)
        return q.decode(fwd.output)


def client_forward_job(seed: int = 0) -> ClientForwardJob:
    spec = SplitSpec.refnet(batch=refnet.BATCH)
    client, _server = refnet.initial_params(spec, seed)
    xtr, ytr, _, _ = refnet.load_digits_split()
    return ClientForwardJob(spec, client, xtr[:spec.batch], ytr[:spec.batch])


def export_onnx(net: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    # The TorchScript exporter needs only the `onnx` package; torch's default (dynamo) exporter
    # also needs onnxscript and prints progress on stdout, which `splitverify bench --json`
    # owns. torch is pinned (2.13.0), where the legacy exporter is deprecated but present.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (x.float(),), str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["output"])


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _median_timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(runs):
        seconds, result = _timed(fn)
        samples.append(seconds)
    return statistics.median(samples), result


def empty_ezkl_record(quick: bool) -> dict:
    """Every field of the result, unmeasured: a value stays None unless its step completed."""
    return {
        "peer": "ezkl", "ezkl_version": None, "job": JOB, "quick": quick,
        "runs": 1 if quick else 3,  # witness, prove and verify times are medians of this many
        "logrows": None, "input_scale": None, "param_scale": None, "num_rows": None,
        **{name: None for name in EZKL_TIMES},
        "proof_bytes": None, "pk_bytes": None, "vk_bytes": None,
        "verified": None, "max_abs_diff_vs_fixed_point": None, "error": None,
    }


def ezkl_client_forward(quick: bool = False, workdir: Path | None = None) -> dict:
    """Prove the ClientForward job with EZKL and time each stage (seconds, this process).

    ``quick`` calibrates EZKL's default scale only and takes each time once; otherwise EZKL
    calibrates for accuracy over its own candidate scales and witness, prove and verify times
    are medians of 3 runs. The SRS is generated locally (``gen_srs``: a development SRS, as
    our development ptau). If EZKL cannot run, ``error`` says why ("Type: message") and what
    did not complete stays None. ``workdir`` keeps the artefacts (the proving key is ~270 MB);
    without it they go to a temporary folder that is removed.
    """
    record = empty_ezkl_record(quick)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        _record_ezkl_run(record, Path(workdir))
        return record
    with tempfile.TemporaryDirectory(prefix="sv-ezkl-") as tmp:
        _record_ezkl_run(record, Path(tmp))
    return record


def _record_ezkl_run(record: dict, workdir: Path) -> None:
    try:
        _run_ezkl(record, workdir)
    except Exception as exc:  # recorded in the result, which bench reports; never a number
        record["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _run_ezkl(record: dict, d: Path) -> None:
    import ezkl  # the optional extra `bench`; a missing install is reported as the error

    record["ezkl_version"] = metadata.version("ezkl")
    job = client_forward_job()
    runs = record["runs"]
    # str paths: some of EZKL's functions (calibrate_settings) refuse a Path
    onnx_path, data, settings, compiled, srs, vk, pk, witness, proof = (
        str(d / name) for name in ("client.onnx", "input.json", "settings.json", "client.ezkl",
                                   "kzg.srs", "vk.key", "pk.key", "witness.json", "proof.json"))
    export_onnx(job.torch_model(), job.x, Path(onnx_path))
    Path(data).write_text(json.dumps({"input_data": [job.x.flatten().tolist()]}))

    def compile_circuit() -> None:
        run_args = ezkl.PyRunArgs()
        run_args.input_visibility = "private"
        run_args.param_visibility = "private"
        run_args.output_visibility = "public"
        _check(ezkl.gen_settings(onnx_path, settings, py_run_args=run_args), "gen_settings")
        # calibration also lowers logrows to the least that fits (gen_settings' default is 17,
        # four times the rows this job needs)
        if record["quick"]:
            target, scales = "resources", [EZKL_DEFAULT_SCALE]
        else:
            target, scales = "accuracy", None  # EZKL's own candidate scales
        _check(ezkl.calibrate_settings(data, onnx_path, settings, target, scales=scales),
               "calibrate_settings")
        _check(ezkl.compile_circuit(onnx_path, compiled, settings), "compile_circuit")

    record["compile_s"], _ = _timed(compile_circuit)
    circuit = json.loads(Path(settings).read_text())
    run_args = circuit["run_args"]
    record.update(logrows=run_args["logrows"], input_scale=run_args["input_scale"],
                  param_scale=run_args["param_scale"], num_rows=circuit["num_rows"])

    record["srs_s"], _ = _timed(lambda: ezkl.gen_srs(srs, run_args["logrows"]))
    record["setup_s"], _ = _timed(lambda: _check(ezkl.setup(compiled, vk, pk, srs), "setup"))
    record["pk_bytes"], record["vk_bytes"] = Path(pk).stat().st_size, Path(vk).stat().st_size
    record["witness_s"], _ = _median_timed(
        lambda: ezkl.gen_witness(data, compiled, witness), runs)
    record["prove_s"], _ = _median_timed(
        lambda: _check(ezkl.prove(witness, compiled, pk, proof, srs), "prove"), runs)
    record["verify_s"], verified = _median_timed(
        lambda: ezkl.verify(proof, settings, vk, srs), runs)
    record["verified"] = bool(verified)
    if not verified:
        raise RuntimeError("EZKL rejected its own proof")

    proved = json.loads(Path(proof).read_text())
    record["proof_bytes"] = len(proved["proof"])  # the proof's raw bytes, without its JSON
    reference = job.reference_output()
    proved_output = ezkl_public_output(ezkl, proved, circuit["model_output_scales"][0],
                                       tuple(reference.shape))
    record["max_abs_diff_vs_fixed_point"] = max_abs_diff(proved_output, reference)


def _check(ok: Any, step: str) -> Any:
    """EZKL reports some failures as a False return rather than an exception."""
    if ok is False:
        raise RuntimeError(f"EZKL's {step} returned False")
    return ok


def ezkl_public_output(ezkl: Any, proof: dict, scale: int,
                       shape: tuple[int, ...]) -> torch.Tensor:
    """The outputs the proof makes public (what its verifier checked), in real units."""
    felts = proof["instances"][0]
    return torch.tensor([ezkl.felt_to_float(f, scale) for f in felts],
                        dtype=torch.float64).reshape(shape)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())
