"""Typed Groth16 artifacts on BN254 (alt_bn128) in the JSON formats snarkjs reads and writes.

The models hold plain ints in affine form and check only *format*: every curve coordinate is a
base-field element (< Q). Whether a point lies on the curve or in the right subgroup is a
verifier's business (it must answer False, not raise, for a well-formed but bad proof).

Conventions:

* G1 point: ``(x, y)``; G2 point: ``((x_c0, x_c1), (y_c0, y_c1))`` -- the order snarkjs uses in
  JSON, where an Fq2 element ``c0 + c1*u`` is written ``[c0, c1]``.
* The point at infinity is ``(0, 0)`` (resp. ``((0, 0), (0, 0))``); ``(0, 0)`` is not on either
  curve (``y^2 = x^3 + b`` with ``b != 0``), so the encoding is unambiguous. snarkjs writes
  infinity as the projective ``[0, 1, 0]``; both are accepted and written back faithfully.
* Numbers in JSON are decimal strings; JSON files are written as snarkjs writes them
  (``JSON.stringify(obj, null, 1)``, no trailing newline), so a loaded file saves byte-identical.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from ..errors import InputError, ProofError, SplitverifyError
from .curve import Q, R

__all__ = [
    "Q",
    "R",
    "Fq",
    "Fq2",
    "G1Point",
    "G2Point",
    "G1_INFINITY",
    "G2_INFINITY",
    "PROOF_BYTES",
    "Proof",
    "PublicSignals",
    "VerificationKey",
]


def _below_q(value: int) -> int:
    if not 0 <= value < Q:
        raise ValueError(f"coordinate {value} is not a base-field element: it must be in [0, Q)")
    return value


Fq = Annotated[int, Strict(), AfterValidator(_below_q)]
Fq2 = tuple[Fq, Fq]  # (c0, c1) for c0 + c1*u
G1Point = tuple[Fq, Fq]
G2Point = tuple[Fq2, Fq2]
Fq12 = tuple[tuple[Fq2, Fq2, Fq2], tuple[Fq2, Fq2, Fq2]]  # snarkjs' nesting of vk_alphabeta_12

G1_INFINITY: G1Point = (0, 0)
G2_INFINITY: G2Point = ((0, 0), (0, 0))
PROOF_BYTES = 256
_WORD = 32

_DECIMAL = re.compile(r"-?[0-9]+")


# --- snarkjs JSON <-> ints ---------------------------------------------------------------------


def _parse_int(value: Any) -> int:
    """A snarkjs number: a decimal string (or a JSON integer). ``int()`` alone would also take
    ``" 1_0 "``, ``"+1"`` or ``True``; such inputs are not something snarkjs writes."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"expected a decimal number string, got {value!r}")


def _parse_nested(value: Any) -> Any:
    """Decimal strings to ints through nested lists (the shape is left to the model to check)."""
    if isinstance(value, list):
        return [_parse_nested(item) for item in value]
    return _parse_int(value)


def _to_strings(value: Any) -> Any:
    """Ints to decimal strings through nested tuples/lists: the inverse of ``_parse_nested``."""
    if isinstance(value, (tuple, list)):
        return [_to_strings(item) for item in value]
    return str(value)


def _affine_from_snarkjs(name: str, value: Any, zero: Any, one: Any) -> tuple[Any, Any]:
    """Accept ``[x, y]`` or snarkjs' ``[x, y, z]`` with z = 1 (affine) or ``[0, 1, 0]`` (infinity).

    ``zero``/``one`` are the field's constants (ints for G1, ``(c0, c1)`` for G2), so one function
    serves both groups. Other z values would need a field inversion to normalise; snarkjs never
    writes them, so they are rejected rather than guessed at.
    """
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise ValueError(f"{name}: expected a point [x, y, z], got {value!r}")
    coords = [_to_tuple(_parse_nested(item)) for item in value]
    if len(coords) == 2 or coords[2] == one:
        return coords[0], coords[1]
    if coords == [zero, one, zero]:
        return zero, zero
    raise ValueError(
        f"{name}: z = {_to_strings(coords[2])} is neither an affine point (z = 1) "
        "nor the point at infinity [0, 1, 0]"
    )


def _affine_to_snarkjs(point: tuple[Any, Any], zero: Any, one: Any) -> list[Any]:
    """The inverse of ``_affine_from_snarkjs``, in the projective form snarkjs writes."""
    coords = [zero, one, zero] if point == (zero, zero) else [point[0], point[1], one]
    return _to_strings(coords)


def _to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _g1_from_snarkjs(name: str, value: Any) -> tuple[Any, Any]:
    return _affine_from_snarkjs(name, value, 0, 1)


def _g2_from_snarkjs(name: str, value: Any) -> tuple[Any, Any]:
    return _affine_from_snarkjs(name, value, (0, 0), (1, 0))


def _g1_to_snarkjs(point: G1Point) -> list[Any]:
    return _affine_to_snarkjs(point, 0, 1)


def _g2_to_snarkjs(point: G2Point) -> list[Any]:
    return _affine_to_snarkjs(point, (0, 0), (1, 0))


def _describe(exc: Exception) -> str:
    """One short line per problem; pydantic's default text is long and repeats the input."""
    if isinstance(exc, ValidationError):
        return "; ".join(_describe_pydantic(err) for err in exc.errors())
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc)


def _describe_pydantic(err: ErrorDetails) -> str:
    where = ".".join(map(str, err["loc"]))
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# --- shared JSON/file plumbing -----------------------------------------------------------------


class _SnarkjsJson:
    """``from_snarkjs``/``load_json``/``save_json`` for a model with a snarkjs JSON form.

    Subclasses implement ``_from_obj`` (parsed JSON -> model; may raise ValueError, TypeError or
    KeyError, which become the subclass's typed error here) and ``to_snarkjs``.
    """

    _error: ClassVar[type[SplitverifyError]]
    _what: ClassVar[str]

    @classmethod
    def _from_obj(cls, data: Any) -> Self:
        raise NotImplementedError

    def to_snarkjs(self) -> Any:
        raise NotImplementedError

    @classmethod
    def from_snarkjs(cls, data: Any) -> Self:
        """Build from snarkjs JSON: the parsed object, or its text."""
        try:
            if isinstance(data, (str, bytes)):
                data = json.loads(data)
            return cls._from_obj(data)
        except (ValueError, TypeError, KeyError) as exc:  # ValidationError is a ValueError
            raise cls._error(f"malformed {cls._what}: {_describe(exc)}") from exc

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> Self:
        """Read a snarkjs JSON file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            message = f"cannot read the {cls._what} file {os.fspath(path)!r}: {exc.strerror}"
            raise InputError(message) from exc
        return cls.from_snarkjs(text)

    def save_json(self, path: str | os.PathLike[str]) -> None:
        """Write the file exactly as snarkjs would (``JSON.stringify(obj, null, 1)``)."""
        Path(path).write_text(json.dumps(self.to_snarkjs(), indent=1), encoding="utf-8")


def _require_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _present(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Optional keys that are present; absent ones fall back to the model's defaults."""
    return {key: data[key] for key in keys if key in data}


_FROZEN = ConfigDict(frozen=True, extra="forbid")


# --- Proof ---------------------------------------------------------------------------------------


class Proof(_SnarkjsJson, BaseModel):
    """A Groth16 proof (A in G1, B in G2, C in G1), as snarkjs' ``proof.json``."""

    model_config = _FROZEN
    _error: ClassVar[type[SplitverifyError]] = ProofError
    _what: ClassVar[str] = "proof"

    pi_a: G1Point
    pi_b: G2Point
    pi_c: G1Point
    protocol: Literal["groth16"] = "groth16"
    curve: Literal["bn128"] = "bn128"

    @classmethod
    def _from_obj(cls, data: Any) -> Self:
        data = _require_object(data)
        return cls.model_validate(
            {
                "pi_a": _g1_from_snarkjs("pi_a", data["pi_a"]),
                "pi_b": _g2_from_snarkjs("pi_b", data["pi_b"]),
                "pi_c": _g1_from_snarkjs("pi_c", data["pi_c"]),
                **_present(data, "protocol", "curve"),
            }
        )

    def to_snarkjs(self) -> dict[str, Any]:
        return {
            "pi_a": _g1_to_snarkjs(self.pi_a),
            "pi_b": _g2_to_snarkjs(self.pi_b),
            "pi_c": _g1_to_snarkjs(self.pi_c),
            "protocol": self.protocol,
            "curve": self.curve,
        }

    def to_bytes(self) -> bytes:
        """The 256-byte form: eight 32-byte big-endian words A.x, A.y, B.x.c1, B.x.c0, B.y.c1,
        B.y.c0, C.x, C.y -- Ethereum's calldata order (EIP-197 puts the *imaginary* part of an
        Fq2 element first), which groth16py's ``Verifier.verify`` and ``prove_wtns`` also use.
        Infinity is all zeros, as the precompiles expect."""
        (ax, ay), ((bx0, bx1), (by0, by1)), (cx, cy) = self.pi_a, self.pi_b, self.pi_c
        return b"".join(v.to_bytes(_WORD, "big") for v in (ax, ay, bx1, bx0, by1, by0, cx, cy))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        """Inverse of ``to_bytes``; raises ProofError on a wrong length or a coordinate >= Q."""
        data = bytes(data)
        if len(data) != PROOF_BYTES:
            raise ProofError(
                f"a proof in bytes form is {PROOF_BYTES} bytes (8 big-endian 32-byte words), "
                f"got {len(data)}"
            )
        ax, ay, bx1, bx0, by1, by0, cx, cy = (
            int.from_bytes(data[i : i + _WORD], "big") for i in range(0, PROOF_BYTES, _WORD)
        )
        try:
            return cls(pi_a=(ax, ay), pi_b=((bx0, bx1), (by0, by1)), pi_c=(cx, cy))
        except ValidationError as exc:
            raise ProofError(f"malformed proof bytes: {_describe(exc)}") from exc


# --- Public signals ----------------------------------------------------------------------------


class PublicSignals(_SnarkjsJson, RootModel[tuple[Annotated[int, Strict()], ...]]):
    """The public inputs/outputs of a proof, as snarkjs' ``public.json``.

    Values are kept exactly as given, even outside [0, R): silently reducing them mod R would let
    ``x`` and ``x + R`` both verify (the malleability snarkjs fixed with its scalar-range check).
    ``is_reduced()`` reports it; verifiers must reject unreduced signals.
    """

    model_config = ConfigDict(frozen=True)
    _error: ClassVar[type[SplitverifyError]] = InputError
    _what: ClassVar[str] = "public signals"

    @classmethod
    def _from_obj(cls, data: Any) -> Self:
        if not isinstance(data, list):
            raise ValueError(f"expected a JSON list of decimal strings, got {type(data).__name__}")
        return cls(tuple(_parse_int(value) for value in data))

    def to_snarkjs(self) -> list[str]:
        return [str(value) for value in self.root]

    def is_reduced(self) -> bool:
        """True when every value is a canonical scalar-field element, 0 <= v < R."""
        return all(0 <= value < R for value in self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __iter__(self) -> Iterator[int]:  # type: ignore[override]  # values, not (field, value)
        return iter(self.root)

    def __getitem__(self, index: int) -> int:
        return self.root[index]


# --- Verification key --------------------------------------------------------------------------

_G2_FIELDS = ("vk_beta_2", "vk_gamma_2", "vk_delta_2")


class VerificationKey(_SnarkjsJson, BaseModel):
    """A Groth16 verification key, as snarkjs' ``verification_key.json``.

    ``vk_alphabeta_12`` (e(alpha, beta), a cache some verifiers use) is kept only so the file
    round-trips; nothing here trusts it. ``splitverify`` is our own metadata (for instance
    ``{"insecure_dev_setup": true, "circuit": "..."}``); snarkjs ignores unknown keys, and the key
    is written only when set.
    """

    model_config = _FROZEN
    _error: ClassVar[type[SplitverifyError]] = ProofError
    _what: ClassVar[str] = "verification key"

    protocol: Literal["groth16"] = "groth16"
    curve: Literal["bn128"] = "bn128"
    nPublic: Annotated[int, Strict(), Field(ge=0)]
    vk_alpha_1: G1Point
    vk_beta_2: G2Point
    vk_gamma_2: G2Point
    vk_delta_2: G2Point
    vk_alphabeta_12: Fq12 | None = None
    IC: tuple[G1Point, ...] = Field(min_length=1)
    splitverify: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _ic_matches_npublic(self) -> Self:
        if self.nPublic != len(self.IC) - 1:
            raise ValueError(
                f"nPublic is {self.nPublic} but IC has {len(self.IC)} points; "
                "a key for n public signals has n + 1"
            )
        return self

    @classmethod
    def _from_obj(cls, data: Any) -> Self:
        data = _require_object(data)
        fields: dict[str, Any] = {
            **_present(data, "protocol", "curve", "splitverify"),
            "nPublic": data["nPublic"],
            "vk_alpha_1": _g1_from_snarkjs("vk_alpha_1", data["vk_alpha_1"]),
            **{name: _g2_from_snarkjs(name, data[name]) for name in _G2_FIELDS},
            "IC": [
                _g1_from_snarkjs(f"IC.{i}", point)
                for i, point in enumerate(_require_list(data["IC"], "IC"))
            ],
        }
        if "vk_alphabeta_12" in data:
            fields["vk_alphabeta_12"] = _parse_nested(data["vk_alphabeta_12"])
        return cls.model_validate(fields)

    def to_snarkjs(self) -> dict[str, Any]:
        """The snarkjs dict, in snarkjs' key order (then ``splitverify`` when set)."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "curve": self.curve,
            "nPublic": self.nPublic,
            "vk_alpha_1": _g1_to_snarkjs(self.vk_alpha_1),
            **{name: _g2_to_snarkjs(getattr(self, name)) for name in _G2_FIELDS},
        }
        if self.vk_alphabeta_12 is not None:
            out["vk_alphabeta_12"] = _to_strings(self.vk_alphabeta_12)
        out["IC"] = [_g1_to_snarkjs(point) for point in self.IC]
        if self.splitverify is not None:
            out["splitverify"] = self.splitverify
        return out


def _require_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a JSON list, got {type(value).__name__}")
    return value

