"""Issue 19 items 4 and 6: the live dashboard at ``/`` (over loopback HTTP against the real server,
tiny model, the operator's keys), and the page in a real browser (Debian's chromium, headless,
driven by Playwright): the step count rises while a session runs, a cheating client's detection
shows with its step, party and reason, and a screenshot is saved.

``SPLITVERIFY_DASHBOARD_SCREENSHOTS=DIR`` also writes the screenshots to DIR (the README's
``docs/dashboard.png`` was made so)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from splitverify import model
from splitverify.ledger.sink import chain_log
from splitverify.limits import Limits
from splitverify_client import SplitClient
from splitverify_server import create_app
from splitverify_server.dashboard import assets
from splitverify_server.loopback import ServerThread, free_port

from conftest import TINY_SPEC, http
from serve_process import ServeProcess
from split_cases import data_batches

pytestmark = pytest.mark.xdist_group("dashboard")

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
BATCHES = data_batches(TINY_SPEC, 8, seed=3)


def operator_app(keys, **kwargs):
    return create_app(lambda _spec: keys, ceremony=False,
                      limits=Limits(client_sessions=10_000), **kwargs)


def new_client(url: str, keys, mode: str = "every", **kwargs) -> SplitClient:
    client = SplitClient(url, spec=TINY_SPEC, proof_mode=mode, circuits_for=lambda _s: keys,
                         **kwargs)
    client.create_session(seed=1)
    return client


def rows_of(tensor) -> list[list[int]]:
    """A tensor's rows (a vector is one row), as the wire writes them."""
    values = tensor.tolist()
    return [values] if not isinstance(values[0], list) else values


def secrets_of(client: SplitClient, server_party, activations) -> list[str]:
    """What must never appear on the dashboard: the session's token, both parties' weight
    salts, and every weight and activation row of 3+ values with one of magnitude ≥ 100 (as
    the JSON of the wire writes them, with and without spaces; smaller rows could occur by
    chance)."""
    rows = [row for tensor in [*(t for layer in client.party.params for t in layer),
                               *(t for layer in server_party.params for t in layer),
                               activations]
            for row in rows_of(tensor) if len(row) >= 3 and max(map(abs, row)) >= 100]
    assert rows, "no row is telling enough to look for"
    return [client.token, str(client.party.weights_salt), str(server_party.weights_salt),
            *(sep.join(map(str, row)) for row in rows for sep in (", ", ","))]


def dashboard_answers(url: str, session_id: int) -> dict[str, str]:
    """Every dashboard answer about the server and this session (pages, live parts, values,
    the page's own script), as text."""
    paths = ["/", "/?part=main", f"/dashboard/sessions/{session_id}",
             f"/dashboard/sessions/{session_id}?part=main",
             f"/dashboard/sessions/{session_id}/view.json", "/dashboard/assets/dashboard.js"]
    answers = {}
    for path in paths:
        response = http.get(url + path)
        assert response.status_code == 200, (path, response.text)
        answers[path] = response.text
    return answers


def test_the_dashboard_shows_a_session_s_public_values_and_never_its_secrets(tiny_keys):
    app = operator_app(tiny_keys)
    with ServerThread(app) as server:
        client = new_client(server.url, tiny_keys)
        x0, y0 = BATCHES[0]
        # step 0's activations, from the initial weights (the client updates them in the step)
        activations = model.client_forward(TINY_SPEC, client.party.params, x0, y0).output
        client.train(BATCHES, steps=2)
        party = app.state.service.sessions[client.session_id].party
        answers = dashboard_answers(server.url, client.session_id)
        values = json.loads(answers[f"/dashboard/sessions/{client.session_id}/view.json"])
        leaked = [(secret[:40], path) for secret in secrets_of(client, party, activations)
                  for path, text in answers.items() if secret in text]
        assert not leaked, leaked
    assert f"{client.session_id:x}"[:12] in answers["/"]
    assert values["steps"] == 2 and values["status"] == "running"
    assert values["proofs_verified"] == 4 == party.verifier.verified
    rows = {row["kind"]: row for row in values["proofs"]}
    assert rows["client_forward"]["verified"] == rows["client_backward"]["verified"] == 2
    assert rows["server_step"]["proofs"] == 2 and rows["server_step"]["prove_s"] > 0
    step = values["timeline"][1]
    assert [s["kind"] for s in step["statements"]] == ["client_forward", "server_step",
                                                       "client_backward"]
    assert [s["proof"] for s in step["statements"]] == ["verified", "sent with the statement",
                                                        "verified"]
    assert step["loss"] == values["curves"]["loss"][1] and 0 <= step["batch_accuracy"] <= 1
    assert step["seconds"] > 0 and step["detection"] is None
    sent = step["statements"][1]["values"]
    assert sent["loss"] == party.losses[1] and sent["weightsAfter"].endswith("…")


def test_after_a_restart_the_stored_steps_show_and_the_server_s_earlier_statements_say_so(
        tiny_keys, tmp_path):
    db = tmp_path / "sessions.db"
    with ServerThread(operator_app(tiny_keys, db=db)) as server:
        client = new_client(server.url, tiny_keys)
        client.step(0, *BATCHES[0])
    with ServerThread(operator_app(tiny_keys, db=db)) as server:
        client.url = server.url
        client.step(1, *BATCHES[1])
        values = http.get(f"{server.url}/dashboard/sessions/{client.session_id}/view.json").json()
    before, after = ([s["proof"] for s in step["statements"]] for step in values["timeline"])
    assert before == ["verified", "not logged (sent before this server process started)",
                      "verified"]
    assert after == ["verified", "sent with the statement", "verified"]
    assert values["steps"] == 2 and None not in values["curves"]["loss"]


def test_the_session_s_key_ceremony_record_shows():
    """The session's own two-party ceremony: each key's contributions and signatures, the ptau."""
    app = create_app()
    with ServerThread(app) as server:
        client = SplitClient(server.url, spec=TINY_SPEC)
        client.create_session(seed=1)
        client.train(BATCHES, steps=1)
        values = http.get(f"{server.url}/dashboard/sessions/{client.session_id}/view.json").json()
        page = http.get(f"{server.url}/dashboard/sessions/{client.session_id}").text
        session = app.state.service.sessions[client.session_id]
    record = values["ceremony"]
    assert set(record["keys"]) == set(session.keys)
    for kind, key in record["keys"].items():
        assert key["ptau"]["origin"] == "development" and len(key["ptau"]["sha256"]) == 64
        assert key["signed_by"] == ["server", "client"]
        assert key["server_contribution"] == session.keys[kind].server_hash
        assert [c["hash"] for c in key["contributions"]] == \
            [c["hash"] for c in session.keys[kind].transcript]
        assert len(key["contributions"]) >= 2
    assert "<td>origin development, power " in page
    assert str(Path(session.keys["server_step"].final).parent) not in page   # no server paths


def test_audit_challenges_and_the_server_s_ledger_entries_show(tiny_keys):
    with chain_log("embedded") as chain:
        app = operator_app(tiny_keys, on_party=chain.sink("server").attach)
        with ServerThread(app) as server:
            client = new_client(server.url, tiny_keys, "audit:1")
            client.train(BATCHES, steps=2)
            values = http.get(f"{server.url}/dashboard/sessions/{client.session_id}/view.json"
                              ).json()
            page = http.get(f"{server.url}/dashboard/sessions/{client.session_id}").text
        recorded = list(chain.sinks["server"].records)
    assert values["challenges_drawn"] == 4
    forward, sent, backward = values["timeline"][1]["statements"]
    assert (forward["proof"], forward["challenged"]) == ("verified", True)
    assert sent["proof"] == "proved if the client challenges it"
    rows = {row["kind"]: row for row in values["proofs"]}
    assert rows["client_forward"]["challenged"] == 2 and rows["server_step"]["proofs"] == 2
    assert [(e["kind"], e["step"], e["refused"]) for e in values["ledger"]] == \
        [("server_step", 0, None), ("server_step", 1, None)]
    assert [e["gas"] for e in values["ledger"]] == [r.gas for r in recorded] and recorded[0].gas
    assert "<h2>Ledger</h2><table>" in page


def test_a_dashboard_token_is_required_once_the_operator_sets_one(tiny_keys):
    with ServerThread(operator_app(tiny_keys, dashboard_token="s3cret")) as server:
        missing, wrong = http.get(server.url + "/"), http.get(server.url + "/?token=guess")
        given = http.get(server.url + "/?token=s3cret")
        by_header = http.get(server.url + "/", headers={"Authorization": "Bearer s3cret"})
        cookie = "; ".join(f"{name}={value}" for name, value in given.cookies.items())
        by_cookie = http.get(server.url + "/?part=main", headers={"Cookie": cookie})
        script = http.get(server.url + "/dashboard/assets/uPlot.iife.min.js")
    assert missing.status_code == 401 and "--dashboard-token" in missing.json()["error"]
    assert wrong.status_code == 403 and "wrong dashboard token" in wrong.json()["error"]
    assert [given.status_code, by_header.status_code, by_cookie.status_code] == [200] * 3
    assert "<h1>Sessions" in by_cookie.text and "s3cret" not in given.text
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    with pytest.raises(Exception, match="--dashboard-token is empty"):
        operator_app(tiny_keys, dashboard_token=" ")


def test_serve_answers_slash_with_the_dashboard(tmp_path):
    serve = ServeProcess(tmp_path / "sessions.db", free_port()).start()
    try:
        page = http.get(serve.url + "/")
        library = http.get(serve.url + "/dashboard/assets/uPlot.iife.min.js")
    finally:
        serve.stop()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Sessions" in page.text and "/dashboard/assets/uPlot.iife.min.js" in page.text
    pinned = assets.uplot_dir() / "dist" / "uPlot.iife.min.js"
    assert library.content == pinned.read_bytes()


def test_the_charting_library_is_the_one_package_json_and_the_lock_pin():
    package = json.loads((REPO / "package.json").read_text())
    lock = json.loads((REPO / "package-lock.json").read_text())
    assert package["dependencies"]["uplot"] == assets.UPLOT_VERSION
    assert lock["packages"]["node_modules/uplot"]["version"] == assets.UPLOT_VERSION
    assert json.loads((assets.uplot_dir() / "package.json").read_text())["version"] == \
        assets.UPLOT_VERSION


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (scripts/setup.sh installs both)."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run scripts/setup.sh (it installs " \
                                   "Debian's chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def shoot(page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot into tmp_path (and $SPLITVERIFY_DASHBOARD_SCREENSHOTS)."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("SPLITVERIFY_DASHBOARD_SCREENSHOTS"):
        folder = Path(os.environ["SPLITVERIFY_DASHBOARD_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)
    return path


def test_in_a_browser_the_step_count_rises_live_and_a_detection_shows(tiny_keys, browser,
                                                                       tmp_path):
    app = operator_app(tiny_keys)
    with ServerThread(app) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        honest = new_client(server.url, tiny_keys)
        honest.step(0, *BATCHES[0])
        page.goto(server.url + "/")
        steps_cell = f'tr[data-session="{honest.session_id:x}"] td.steps'
        assert page.text_content(steps_cell) == "1"
        # the session goes on while the page stays open: the page updates itself
        for step in (1, 2, 3):
            honest.step(step, *BATCHES[step])
        page.wait_for_function(f"document.querySelector('{steps_cell}').textContent === '4'",
                               timeout=20_000)

        page.goto(f"{server.url}/dashboard/sessions/{honest.session_id}")
        page.wait_for_selector("#chart-loss .uplot", timeout=20_000)
        page.wait_for_selector("#chart-seconds .uplot", timeout=20_000)
        honest.step(4, *BATCHES[4])
        page.wait_for_function("document.querySelector('[data-fact=steps]').textContent === '5'",
                               timeout=20_000)
        assert page.locator("#chart-loss .uplot").count() == 1   # updated, not drawn twice
        shot = shoot(page, tmp_path, "dashboard.png")

        cheat = new_client(server.url, tiny_keys, malicious="client:replay")
        result = cheat.train(BATCHES, steps=3)
        stopped = app.state.service.sessions[cheat.session_id].stopped
        page.goto(server.url + "/")
        row = page.locator(f'tr[data-session="{cheat.session_id:x}"] .detected')
        row.wait_for(timeout=20_000)
        listed = row.text_content()
        page.goto(f"{server.url}/dashboard/sessions/{cheat.session_id}")
        banner = page.locator(".banner.detected").text_content()
        red = page.eval_on_selector(".banner.detected", "e => getComputedStyle(e).color")
        timeline_detection = page.locator("tr.detected .detection").text_content()
        detected_shot = shoot(page, tmp_path, "dashboard-detection.png")
        page.close()
    assert result.detected is not None and stopped is not None
    assert (stopped.detected_step, stopped.detected_by) == (1, "server")
    assert f"step {stopped.detected_step} by the server: {stopped.reason}" in banner
    assert red == "rgb(204, 0, 0)"
    assert "detected by the server" in timeline_detection and stopped.reason in timeline_detection
    assert listed.startswith("tampering detected at step 1 by the server")
    for path in (shot, detected_shot):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
