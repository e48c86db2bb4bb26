# SPDX-License-Identifier: GPL-3.0-or-later
"""An R1CS satisfiability checker in Python, for soundness sweeps.

``snarkjs wtns check`` answers one witness per process (about a second); a sweep that tampers
every wire of a circuit in turn needs thousands of answers. A tampered witness differs from an
honest one in a single wire, and only the constraints mentioning that wire can change, so
:meth:`R1csSystem.rejects_tamper` evaluates just those (after :meth:`unsatisfied` has shown that
the honest witness satisfies every constraint). The check itself is the plain definition:
(A·w)·(B·w) − C·w ≡ 0 mod r for every constraint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .curve import R
from .r1cs import Constraint, LinearCombination, R1csInfo, read_r1cs


def evaluate(lc: LinearCombination, witness: Sequence[int]) -> int:
    return sum(coef * witness[wire] for wire, coef in lc) % R


def satisfied(constraint: Constraint, witness: Sequence[int]) -> bool:
    a, b, c = constraint
    return (evaluate(a, witness) * evaluate(b, witness) - evaluate(c, witness)) % R == 0


@dataclass
class R1csSystem:
    info: R1csInfo
    constraints: list[Constraint]
    # wire -> indices of the constraints whose A, B or C mentions it with a non-zero coefficient
    _uses: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for index, (a, b, c) in enumerate(self.constraints):
            for wire in {wire for lc in (a, b, c) for wire, coef in lc if coef % R}:
                self._uses.setdefault(wire, []).append(index)

    @classmethod
    def read(cls, path: str | Path) -> R1csSystem:
        info, constraints = read_r1cs(path, with_constraints=True)
        assert constraints is not None
        return cls(info, constraints)

    def constraints_using(self, wire: int) -> list[int]:
        return self._uses.get(wire, [])

    def unsatisfied(self, witness: Sequence[int], which: Iterable[int] | None = None
                    ) -> list[int]:
        """Indices of the constraints (all, or those in ``which``) that ``witness`` violates."""
        if len(witness) != self.info.n_wires:
            raise ValueError(f"witness has {len(witness)} entries, the R1CS {self.info.n_wires} wires")
        indices = range(len(self.constraints)) if which is None else which
        return [i for i in indices if not satisfied(self.constraints[i], witness)]

    def rejects_tamper(self, honest: list[int], wire: int, new_value: int) -> bool:
        """Would the R1CS reject ``honest`` with entry ``wire`` set to ``new_value``?
        Precondition: ``honest`` satisfies every constraint (so only the constraints using
        ``wire`` can fail)."""
        old = honest[wire]
        honest[wire] = new_value % R
        try:
            return bool(self.unsatisfied(honest, self.constraints_using(wire)))
        finally:
            honest[wire] = old
