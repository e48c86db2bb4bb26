"""The tamper scenarios as declared: name, side, what each does, whether it needs proofs.

This is what the command line's ``--malicious`` help, ``compare`` and ``demo`` read, so it
imports neither the parties nor torch. A scenario is declared once, by the decorator of its
party class in :mod:`.scenarios` (``@scenario(name, description, needs_proofs=…)``, literal
arguments); this module reads those decorators from that file's source without running it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputError

Side = Literal["client", "server"]


@dataclass(frozen=True)
class Declared:
    name: str                    # "<side>:<what>", as --malicious takes it
    description: str             # one line, for --help and reports
    # without proofs the cheat has nothing to act on, and its run is the honest run
    needs_proofs: bool = False

    @property
    def side(self) -> Side:
        """The party that cheats."""
        return "client" if self.name.startswith("client:") else "server"


def _declared_in_scenarios() -> tuple[Declared, ...]:
    """Each ``@scenario(...)`` class decorator of ``scenarios.py``, in source order."""
    tree = ast.parse(Path(__file__).with_name("scenarios.py").read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        for decorator in getattr(node, "decorator_list", ()):
            if (isinstance(node, ast.ClassDef) and isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Name) and decorator.func.id == "scenario"):
                found.append(Declared(*map(ast.literal_eval, decorator.args),
                                      **{k.arg: ast.literal_eval(k.value)
                                         for k in decorator.keywords}))
    return tuple(found)


DECLARED: tuple[Declared, ...] = _declared_in_scenarios()
_BY_NAME = {d.name: d for d in DECLARED}


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get(name: str) -> Declared:
    found = _BY_NAME.get(name)
    if found is None:
        raise InputError(f"unknown scenario {name!r}; one of {list(_BY_NAME)}")
    return found


def for_side(side: Side) -> tuple[Declared, ...]:
    return tuple(d for d in DECLARED if d.side == side)


def played_by(name: str | None, side: Side) -> str | None:
    """``name`` if ``side`` plays it; None if there is none or the other side plays it; an
    InputError if it is no scenario."""
    if name is None:
        return None
    return name if get(name).side == side else None


def require_side(name: str | None, side: Side) -> None:
    """Refuse a scenario the other side plays (a server cannot play a client's cheat)."""
    if name is not None and played_by(name, side) is None:
        raise InputError(f"{name} is a {get(name).side} scenario; the {side} plays one of "
                         f"{[d.name for d in for_side(side)]}")


def help_text() -> str:
    """The ``--malicious`` help: every scenario with what it does."""
    return "A tamper scenario: " + "; ".join(f"{d.name} ({d.description})"
                                             for d in DECLARED) + "."
