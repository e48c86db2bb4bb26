"""The files the dashboard page loads, all served by the server itself (no CDN): its own script
and style (``static/``, package data) and the charting library, uPlot, pinned in the project's
``package.json`` and lock. A wheel of the server carries uPlot under ``splitverify_server/
_vendor/uplot/`` (``server/setup.py`` copies it there from ``node_modules`` at build time); an
editable install reads the checkout's ``node_modules/uplot/`` (or ``$SPLITVERIFY_NODE_MODULES``)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from splitverify.errors import InstallError
from splitverify.zk.toolchain import ENV_NODE_MODULES

PACKAGE_DIR = Path(__file__).resolve().parents[1]          # splitverify_server/
STATIC_DIR = Path(__file__).resolve().parent / "static"
UPLOT_VERSION = "1.6.32"                                   # as package.json pins it
# the folder a wheel carries it in: server/setup.py writes it, this module reads it
VENDOR_DIR = PACKAGE_DIR / "_vendor" / "uplot"
UPLOT_FILES = ("uPlot.iife.min.js", "uPlot.min.css")
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _uplot_candidates() -> list[Path]:
    """Where uPlot's ``package.json`` and ``dist/`` may be, in order."""
    found = [VENDOR_DIR]
    if os.environ.get(ENV_NODE_MODULES):
        found.append(Path(os.environ[ENV_NODE_MODULES]) / "uplot")
    return [*found, PACKAGE_DIR.parents[1] / "node_modules" / "uplot"]


@cache
def uplot_dir() -> Path:
    """uPlot's package folder at the pinned version (InstallError naming the fix otherwise)."""
    for folder in _uplot_candidates():
        manifest = folder / "package.json"
        if not manifest.is_file():
            continue
        version = json.loads(manifest.read_text()).get("version")
        if version != UPLOT_VERSION:
            raise InstallError(f"uPlot {version} at {folder}, the dashboard needs the pinned "
                               f"{UPLOT_VERSION}: run `npm ci` in the splitverify checkout")
        return folder
    raise InstallError("the dashboard's charting library (npm package uplot "
                       f"{UPLOT_VERSION}) is missing: looked in "
                       f"{', '.join(str(c) for c in _uplot_candidates())}; run `npm ci` in "
                       "the splitverify checkout (or reinstall splitverify-server from a wheel)")


def asset(name: str) -> tuple[bytes, str] | None:
    """A page file by its name (content and media type), None for any other name."""
    if name in UPLOT_FILES:
        path = uplot_dir() / "dist" / name
    elif name in ("dashboard.js", "dashboard.css"):
        path = STATIC_DIR / name
    else:
        return None
    return path.read_bytes(), MEDIA_TYPES[path.suffix]
