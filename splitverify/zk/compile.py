"""Compiling Circom circuits with the pinned circom2 (circom 2.2.3 as WASM), cached by content.

circom2 runs under WASI and can only open files below its working directory, so every compile
stages the sources in a scratch folder: the circuit's own folder (its *.circom files), each
include folder, and circomlib, side by side. The cache key covers the staged files' contents,
the compiler version, the template, its parameters and the flags.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import CompileError, InputError
from .cache import ArtifactCache, digest
from .r1cs import R1csInfo, read_r1cs
from .toolchain import find_toolchain, strip_ansi, tail

MAX_STAGED_FILES = 2000
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CompiledCircuit:
    name: str
    key: str
    directory: Path
    info: R1csInfo
    public_signal_names: tuple[str, ...]
    input_shapes: dict[str, tuple[int, ...]]

    @property
    def r1cs(self) -> Path:
        return self.directory / f"{self.name}.r1cs"

    @property
    def wasm(self) -> Path:
        return self.directory / f"{self.name}_js" / f"{self.name}.wasm"

    @property
    def sym(self) -> Path:
        return self.directory / f"{self.name}.sym"


def _circom_files(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*.circom")
             if not any(part.startswith(".") or part == "node_modules"
                        for part in p.relative_to(root).parts)]
    if len(files) > MAX_STAGED_FILES:
        raise InputError(f"{root} holds {len(files)} .circom files; put the circuit in a folder "
                         "of its own (every .circom file beside it is staged for the compiler)")
    return sorted(files)


def _tree_digest(root: Path) -> list[tuple[str, str]]:
    return [(str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest())
            for p in _circom_files(root)]


def _stage(root: Path, dest: Path) -> None:
    for src in _circom_files(root):
        target = dest / src.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)


def main_source(include: str, template: str, params: list[int] | tuple[int, ...] = (),
                public: list[str] | tuple[str, ...] = ()) -> str:
    """The `component main` file for a template with parameters."""
    for name in (template, *public):
        if not _NAME_RE.match(name):
            raise InputError(f"{name!r} is not a valid Circom identifier")
    pub = f" {{public [{', '.join(public)}]}}" if public else ""
    args = ", ".join(str(int(p)) for p in params)
    return (f'pragma circom 2.1.0;\ninclude "{include}";\n\n'
            f"component main{pub} = {template}({args});\n")


_LOCATION_RE = re.compile(r'┌─ "?([^":\s]+)"?:(\d+):(\d+)')


def _compile_error(proc, name: str) -> CompileError:
    text = tail(proc, 6000)
    loc = _LOCATION_RE.search(text)
    where = f" at {loc.group(1)} line {loc.group(2)}, column {loc.group(3)}" if loc else ""
    return CompileError(f"circom could not compile {name}{where}:\n{text}")


def compile_circuit(source: str | Path, *, template: str | None = None,
                    params: list[int] | tuple[int, ...] = (), public: tuple[str, ...] = (),
                    include_dirs: tuple[str | Path, ...] = (), optimize: str = "O1",
                    cache: ArtifactCache | None = None) -> CompiledCircuit:
    """Compile ``source`` (a file with a ``component main``), or — with ``template`` — a generated
    main that instantiates ``template(params)`` from ``source``. Returns the cached artifacts."""
    source = Path(source).resolve()
    if not source.is_file():
        raise InputError(f"circuit source {source} does not exist")
    if optimize not in ("O0", "O1", "O2"):
        raise InputError(f"optimize must be O0, O1 or O2, not {optimize!r}")
    tc = find_toolchain()
    cache = cache or ArtifactCache()
    roots = {"src": source.parent, "circomlib": tc.circomlib}
    roots.update({f"inc{i}": Path(d).resolve() for i, d in enumerate(include_dirs)})
    for label, root in roots.items():
        if not root.is_dir():
            raise InputError(f"include folder {root} does not exist")
    if template:
        name = f"{template}_{digest([list(map(int, params)), list(public)])[:10]}"
        main_text = main_source(f"src/{source.name}", template, params, public)
    else:
        name = source.stem
        main_text = None
    if not _NAME_RE.match(name):
        raise InputError(f"circuit file name {source.name!r} must be a Circom identifier "
                         "(letters, digits, underscores)")
    key = digest({
        "compiler": f"circom2@{tc.package_version('circom2')}",
        "main": main_text or f"src/{source.name}",
        "flags": ["--r1cs", "--wasm", "--sym", f"--{optimize}"],
        "trees": {label: _tree_digest(root) for label, root in roots.items()},
    })

    def build(out: Path) -> dict:
        with tempfile.TemporaryDirectory(prefix="sv-circom-") as scratch:
            stage = Path(scratch)
            for label, root in roots.items():
                _stage(root, stage / label)
            if main_text is None:
                target = f"src/{source.name}"
            else:
                target = f"{name}.circom"
                (stage / target).write_text(main_text)
            libs = [a for label in roots for a in ("-l", label)]
            (stage / "build").mkdir()
            proc = tc.run("circom2", [target, "--r1cs", "--wasm", "--sym", f"--{optimize}",
                                      "-o", "build", *libs], cwd=stage, check=False)
            if proc.returncode != 0:
                raise _compile_error(proc, source.name)
            produced = stage / "build"  # circom names its outputs after the entry file: `name`
            if not (produced / f"{name}.r1cs").is_file():
                raise _compile_error(proc, source.name)
            for suffix in (".r1cs", ".sym"):
                shutil.copyfile(produced / f"{name}{suffix}", out / f"{name}{suffix}")
            (out / f"{name}_js").mkdir()
            shutil.copyfile(produced / f"{name}_js" / f"{name}.wasm",
                            out / f"{name}_js" / f"{name}.wasm")
            (out / "compiler_output.txt").write_text(strip_ansi(proc.stdout + proc.stderr))
        info, _ = read_r1cs(out / f"{name}.r1cs")
        return {"name": name, "source": str(source), "template": template,
                "params": list(params), "constraints": info.n_constraints}

    entry = cache.get_or_build("circuit", key, build)
    return load_compiled(entry.path, entry.key)


def load_compiled(directory: Path, key: str) -> CompiledCircuit:
    import json

    manifest = json.loads((directory / "manifest.json").read_text())
    name = manifest["name"]
    info, _ = read_r1cs(directory / f"{name}.r1cs")
    public_names, shapes = _signals_from_sym(directory / f"{name}.sym", info)
    return CompiledCircuit(name, key, directory, info, public_names, shapes)


def _signals_from_sym(sym: Path, info: R1csInfo):
    """Names of the public signals (in witness order) and the shapes of main's inputs, read
    from the .sym map (label, wire, component, name). Labels keep circom's declaration order
    (outputs, public inputs, private inputs) even for inputs the optimiser removed (wire -1)."""
    first_input = 1 + info.n_public_outputs
    last_input = first_input + info.n_public_inputs + info.n_private_inputs
    by_wire: dict[int, str] = {}
    for line in sym.read_text().splitlines():
        parts = line.split(",", 3)
        if len(parts) == 4 and parts[3].startswith("main.") and parts[3].count(".") == 1:
            wire = int(parts[0])
            if 1 <= wire < last_input:
                by_wire.setdefault(wire, parts[3][len("main."):])
    public = tuple(by_wire.get(w, f"#{w}") for w in range(1, 1 + info.n_public))
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for wire in range(first_input, last_input):
        label = by_wire.get(wire)
        if label is None:
            continue
        base, _, rest = label.partition("[")
        idx = tuple(int(x) for x in re.findall(r"\[(\d+)\]", label))
        shapes.setdefault(base, []).append(idx)
    input_shapes = {name: (tuple(m + 1 for m in map(max, zip(*idxs))) if idxs[0] else ())
                    for name, idxs in shapes.items()}
    return public, input_shapes
