"""The EZKL peer benchmark (quick path): a well-formed result, measured or with its error.

No timing value is checked (the machine is shared and noisy), only the shape of the result."""

from __future__ import annotations

import pytest

from splitverify_server.apps.peers import EZKL_TIMES, empty_ezkl_record, ezkl_client_forward

NOT_INSTALLED = ("not installed: it is in the server's optional extra `bench` "
                 "(pip install -e './server[bench]')")
pytest.importorskip("ezkl", reason=f"EZKL {NOT_INSTALLED}")
pytest.importorskip("onnx", reason=f"onnx {NOT_INSTALLED}")


@pytest.mark.slow
@pytest.mark.xdist_group("peers")
def test_ezkl_client_forward_quick_is_well_formed():
    result = ezkl_client_forward(quick=True)
    assert set(result) == set(empty_ezkl_record(quick=True))
    assert result["quick"] is True and result["peer"] == "ezkl"
    # the pinned EZKL is installed here, so it must run (a recorded error is only for machines
    # where it cannot; that path has its own test below)
    assert result["error"] is None, result["error"]
    for name in EZKL_TIMES:
        assert isinstance(result[name], float) and result[name] > 0, name
    assert result["verified"] is True
    assert isinstance(result["logrows"], int) and isinstance(result["proof_bytes"], int)
    assert result["proof_bytes"] > 0
    assert isinstance(result["max_abs_diff_vs_fixed_point"], float)


def test_ezkl_error_is_recorded_not_raised(monkeypatch):
    """An EZKL that cannot run gives the same fields, no times and the exception's text."""
    import ezkl

    def broken(*_args, **_kwargs):
        raise ValueError("no such settings")

    monkeypatch.setattr(ezkl, "gen_settings", broken)
    result = ezkl_client_forward(quick=True)
    assert set(result) == set(empty_ezkl_record(quick=True))
    assert result["error"] == "ValueError: no such settings"
    assert all(result[name] is None for name in EZKL_TIMES)
