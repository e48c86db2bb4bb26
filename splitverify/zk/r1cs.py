"""Reading circom's .r1cs files: the header counts, and the constraints for the native setup."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import IntegrityError
from .binfile import read_binfile
from .curve import R


@dataclass(frozen=True)
class R1csInfo:
    n_wires: int
    n_public_outputs: int
    n_public_inputs: int
    n_private_inputs: int
    n_labels: int
    n_constraints: int

    @property
    def n_public(self) -> int:
        """Public signals as snarkjs counts them: outputs, then public inputs."""
        return self.n_public_outputs + self.n_public_inputs

    @property
    def domain_power(self) -> int:
        """log2 of the evaluation domain snarkjs uses: constraints plus one per public signal
        plus the constant one, rounded up to a power of two (snarkjs' `cirPower`)."""
        return (self.n_constraints + self.n_public).bit_length()

    @property
    def ptau_power(self) -> int:
        """Smallest powers-of-tau file (2^power) that can set this circuit up."""
        return max(self.domain_power, 1)


# One linear combination: (wire, coefficient) pairs. A constraint is (A, B, C): A·B = C.
LinearCombination = list[tuple[int, int]]
Constraint = tuple[LinearCombination, LinearCombination, LinearCombination]


def read_r1cs(path: str | Path, with_constraints: bool = False
              ) -> tuple[R1csInfo, list[Constraint] | None]:
    bf = read_binfile(path, b"r1cs")
    header = bytes(bf.section(1))
    (n8,) = struct.unpack_from("<I", header, 0)
    prime = int.from_bytes(header[4: 4 + n8], "little")
    if prime != R:
        raise IntegrityError(f"{path} is for another curve (prime {prime}); compile for bn128")
    n_wires, n_out, n_pub, n_prv, n_labels, n_cons = struct.unpack_from("<IIIIQI", header, 4 + n8)
    info = R1csInfo(n_wires, n_out, n_pub, n_prv, n_labels, n_cons)
    if not with_constraints:
        return info, None
    body = bytes(bf.section(2))
    pos = 0
    constraints: list[Constraint] = []
    unpack_term = struct.Struct("<I").unpack_from
    for _ in range(n_cons):
        lcs = []
        for _ in range(3):
            (n_terms,) = unpack_term(body, pos)
            pos += 4
            lc = []
            for _ in range(n_terms):
                (wire,) = unpack_term(body, pos)
                coef = int.from_bytes(body[pos + 4: pos + 4 + n8], "little")
                lc.append((wire, coef))
                pos += 4 + n8
            lcs.append(lc)
        constraints.append((lcs[0], lcs[1], lcs[2]))
    return info, constraints
