"""Temporary key folders go away with what owns them (a demo or an in-memory server used to
leave each session's keys, hundreds of MB at RefNet, in /tmp for good)."""

from __future__ import annotations

import gc

from splitverify import zk
from splitverify.tempfolders import owned_temp_folder


class _Owner:
    pass


def test_a_folder_is_removed_with_its_owner():
    owner = _Owner()
    folder = owned_temp_folder(owner, "sv-test-")
    (folder / "key.zkey").write_bytes(b"k" * 1000)
    gc.collect()
    assert folder.is_dir()          # still owned
    del owner
    gc.collect()
    assert not folder.exists()


def test_a_key_made_in_a_temporary_folder_takes_it_along(matmul_circuit):
    key = zk.setup(matmul_circuit, contributors=("one",))
    folder = key.zkey.parent
    assert key.zkey.is_file() and folder.name.startswith("sv-")
    del key
    gc.collect()
    assert not folder.exists()


def test_a_key_made_in_a_given_folder_stays(matmul_circuit, tmp_path):
    key = zk.setup(matmul_circuit, contributors=("one",), workdir=tmp_path / "keys")
    path = key.zkey
    del key
    gc.collect()
    assert path.is_file()
