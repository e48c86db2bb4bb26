"""Figures as the comparison's table and figure print them (shared by both, below both)."""

from __future__ import annotations


def seconds_text(value: float | None) -> str:
    """'2.3 ms', '313 ms', '24.1 s'; – for no value."""
    if value is None:
        return "–"
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
