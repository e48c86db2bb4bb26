"""Figures as the comparison's table and figure print them (shared by both, below both)."""

from __future__ import annotations

from splitverify.session_report import seconds_text

__all__ = ["seconds_text"]
