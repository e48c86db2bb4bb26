"""Where the pinned npm toolchain is looked for, and what a user without one is told to run
(`splitverify toolchain install`; its real `npm ci` into a fresh venv's cache is tested in
tests/test_packaging.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitverify.errors import ToolchainError
from splitverify.resources import toolchain_manifest_dir
from splitverify.zk import toolchain
from splitverify.zk.cache import ArtifactCache
from splitverify.zk.toolchain import (CACHE_KIND, ENV_NODE_MODULES, find_toolchain,
                                      installed_node_modules, lock_digest)

CHECKOUT_NODE_MODULES = Path(__file__).resolve().parents[3] / "node_modules"


@pytest.fixture
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactCache:
    """As a pip-installed splitverify sees it: no checkout node_modules, none in the working
    folder, no $SPLITVERIFY_NODE_MODULES; an empty user cache."""
    monkeypatch.setattr(toolchain, "REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_NODE_MODULES, raising=False)
    monkeypatch.setenv("SPLITVERIFY_CACHE", str(tmp_path / "user-cache"))
    find_toolchain.cache_clear()
    yield ArtifactCache(tmp_path / "user-cache")
    find_toolchain.cache_clear()


def test_the_package_s_lock_is_found_and_keys_the_install() -> None:
    manifest = toolchain_manifest_dir()
    assert manifest is not None and (manifest / "package.json").is_file()
    assert installed_node_modules(Path("/cache")) == (
        Path("/cache") / CACHE_KIND / lock_digest(manifest) / "node_modules")


def test_without_a_toolchain_the_error_names_the_install_command(no_checkout) -> None:
    with pytest.raises(ToolchainError) as info:
        find_toolchain()
    message = str(info.value)
    assert "splitverify toolchain install" in message
    assert str(installed_node_modules(no_checkout.root)) in message      # where it looked
    assert not list(no_checkout.root.glob(f"{CACHE_KIND}/*")), "looking created nothing"


def test_the_installed_toolchain_is_found_after_the_checkout_s(no_checkout,
                                                              monkeypatch) -> None:
    """An entry in the user cache (here the checkout's real packages, linked in place of
    `npm ci`'s copy) is used when nothing comes before it; $SPLITVERIFY_NODE_MODULES, when set,
    is the only place looked at."""
    def link(folder: Path) -> dict:
        (folder / "node_modules").symlink_to(CHECKOUT_NODE_MODULES)
        return {}

    no_checkout.get_or_build(CACHE_KIND, lock_digest(toolchain_manifest_dir()), link)
    found = find_toolchain()
    assert found.node_modules == CHECKOUT_NODE_MODULES.resolve()
    assert found.package_version("snarkjs") == toolchain.PINNED["snarkjs"]

    empty = no_checkout.root.parent / "empty"
    empty.mkdir()
    monkeypatch.setenv(ENV_NODE_MODULES, str(empty))
    find_toolchain.cache_clear()
    with pytest.raises(ToolchainError, match=str(empty)):
        find_toolchain()
