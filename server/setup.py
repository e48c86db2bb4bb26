# The build step that ships the dashboard's charting library: uPlot, pinned in the checkout's
# package.json and lock and installed by `npm ci`, is copied from node_modules into the wheel as
# splitverify_server/_vendor/uplot/ (splitverify_server.dashboard.assets reads it there; an
# editable install reads the checkout's node_modules instead). Everything else is declared in
# pyproject.toml.
import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ["package.json", "LICENSE", "dist/uPlot.iife.min.js", "dist/uPlot.min.css"]


def uplot_source() -> Path:
    """The checkout's node_modules/uplot (or $SPLITVERIFY_NODE_MODULES/uplot)."""
    candidates = [Path(os.environ["SPLITVERIFY_NODE_MODULES"]) / "uplot"] \
        if os.environ.get("SPLITVERIFY_NODE_MODULES") else []
    candidates.append(ROOT.parent / "node_modules" / "uplot")
    for candidate in candidates:
        if (candidate / "package.json").is_file():
            return candidate
    raise FileNotFoundError(f"the npm package uplot is not in {', '.join(map(str, candidates))}:"
                            " run `npm ci` in the checkout before building the server's wheel")


class BuildWithVendor(build_py):
    """build_py, plus uPlot copied into the built package."""

    def run(self):
        super().run()
        if self.editable_mode:     # the checkout's node_modules is read in place
            return
        source = uplot_source()
        for name in SHIPPED:
            target = Path(self.build_lib, "splitverify_server", "_vendor", "uplot", name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, target)


setup(cmdclass={"build_py": BuildWithVendor})
