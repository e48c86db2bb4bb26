"""The dashboard's HTML, rendered on the server from :mod:`.view`'s public values (every value
escaped). A page is a shell around ``<main id="live">``; the page's script fetches the same
address with ``?part=main`` every second and swaps that part in, so one renderer serves both
the first load and the live updates; the curves travel in the part as JSON."""

from __future__ import annotations

import json
from html import escape

ASSETS = "/dashboard/assets"
REFRESH_MS = 1000


def page(title: str, main: str) -> str:
    """The whole page around its live part."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{ASSETS}/uPlot.min.css">
<link rel="stylesheet" href="{ASSETS}/dashboard.css">
</head><body data-refresh-ms="{REFRESH_MS}">
<header><a href="/">splitverify</a> · live dashboard
<span class="note">public values only: statements, commitments, timings, outcomes ·
refreshed every second</span></header>
<main id="live">{main}</main>
<script src="{ASSETS}/uPlot.iife.min.js"></script>
<script src="{ASSETS}/dashboard.js"></script>
</body></html>"""


def _cell(value) -> str:
    if value is None:
        return '<td class="none">–</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{escape(str(value))}</td>"


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="none">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def detection_text(detection: dict) -> str:
    return (f"tampering detected at step {detection['step']} by the {detection['party']}: "
            f"{detection['reason']}")


def index(server_identity: str, sessions: list[dict]) -> str:
    """The live part of ``/``: the server and its sessions."""
    rows = []
    for s in sessions:
        status = escape(s["status"])
        if s["detection"] is not None:
            status = f'<span class="detected">{escape(detection_text(s["detection"]))}</span>'
        rows.append(
            f'<tr data-session="{s["id_hex"]}">'
            f'<td><a href="/dashboard/sessions/{s["id"]}">{s["id_hex"][:12]}…</a></td>'
            f'<td>{escape(s["proof_mode"])}</td>'
            f'<td class="num steps">{s["steps"]}</td>{_cell(s["proofs_verified"])}'
            f'{_cell(s["challenges_drawn"])}{_cell(s["last_loss"])}'
            f'<td>{status}</td>{_cell(s["idle_s"])}<td class="model">{escape(s["model"])}</td>'
            "</tr>")
    table = _table(["session", "proof mode", "steps", "proofs verified", "challenges drawn",
                    "last loss", "status", "idle s", "model"], rows,
                   "no sessions yet: start one with `splitverify train --server URL`")
    return (f'<h1>Sessions <span class="count">{len(sessions)}</span></h1>'
            f'<p class="note">server identity {escape(server_identity)}</p>{table}')


def _statement(st: dict) -> str:
    values = " ".join(f'<span title="{escape(name)}">{escape(name)}={escape(str(v))}</span>'
                      for name, v in st["values"].items())
    challenged = {True: "challenged", False: "not challenged", None: ""}[st["challenged"]]
    verify = f' · verify {st["verify_s"]:g} s' if st["verify_s"] is not None else ""
    return (f'<div class="statement {escape(st["kind"])}"><b>{escape(st["kind"])}</b> '
            f'{escape(st["from"])} → checked by {escape(st["checked_by"])} · '
            f'<span class="proof">{escape(st["proof"])}</span>'
            f'{" · " + challenged if challenged else ""}{verify}'
            f'<div class="values">{values}</div></div>')


def _timeline(steps: list[dict], shown: int = 200) -> str:
    rows = []
    for s in reversed(steps[-shown:]):
        detection = s["detection"]
        cls = ' class="detected"' if detection else ""
        what = "".join(_statement(st) for st in s["statements"])
        if detection:
            what += (f'<div class="detection">detected by the {escape(detection["party"])}: '
                     f'{escape(detection["reason"])}</div>')
        rows.append(f'<tr{cls}><td class="num">{s["step"]}</td>{_cell(s["loss"])}'
                    f'{_cell(s["batch_accuracy"])}{_cell(s["seconds"])}<td>{what}</td></tr>')
    more = (f'<p class="note">the latest {shown} of {len(steps)} steps</p>'
            if len(steps) > shown else "")
    return more + _table(["step", "loss", "batch accuracy", "step s", "statements"], rows,
                         "no step yet")


def _proofs(rows: list[dict]) -> str:
    return _table(
        ["kind", "proved by", "checked by", "statements", "proofs", "verified", "challenged",
         "prove s (mean)", "verify s (mean)"],
        [f'<tr><td>{escape(r["kind"])}</td><td>{escape(r["prover"])}</td>'
         f'<td>{escape(r["verifier"])}</td>{_cell(r["statements"])}{_cell(r["proofs"])}'
         f'{_cell(r["verified"])}{_cell(r["challenged"])}{_cell(r["prove_s"])}'
         f'{_cell(r["verify_s"])}</tr>' for r in rows], "no statements")


def _ceremony(record: dict) -> str:
    head = (f'<p>powers of tau: {_ptau(record["ptau"])}</p>' if record["ptau"] else
            '<p class="none">no ptau shared by the keys (see each key’s, or the operator’s own '
            "keys)</p>")
    rows = []
    for kind, key in record["keys"].items():
        chain = "; ".join(f'{escape(str(c["name"]))} ({escape(str(c["kind"]))}) '
                          f'<code>{escape(str(c["hash"])[:16])}…</code>'
                          for c in key["contributions"])
        if key.get("reused_from") is not None:
            chain += f" (key reused from session {escape(str(key['reused_from']))})"
        rows.append(f"<tr><td>{escape(kind)}</td><td>{_ptau(key['ptau'])}</td>"
                    f'<td><code>{escape(str(key["server_contribution"])[:16])}…</code></td>'
                    f'<td>{escape(", ".join(key["signed_by"]))}</td>'
                    f'<td>{chain or "awaiting the client’s contribution"}</td></tr>')
    return head + _table(["circuit", "ptau", "server contribution", "signed by",
                          "contributions"],
                         rows, "no key ceremony: the server uses the operator's keys")


def _ptau(ptau: dict | None) -> str:
    if not ptau:
        return "–"
    return escape(", ".join(f"{k} {str(v)[:16] + '…' if k == 'sha256' else v}"
                            for k, v in ptau.items() if v is not None))


def _ledger(entries: list[dict]) -> str:
    return _table(
        ["step", "kind", "verified on chain", "gas", "seconds", "refused"],
        [f'<tr{" class=detected" if e["refused"] else ""}>{_cell(e["step"])}'
         f'<td>{escape(e["kind"])}</td>{_cell("yes" if e["verified_on_chain"] else "no")}'
         f'{_cell(e["gas"])}{_cell(e["seconds"])}{_cell(e["refused"])}</tr>' for e in entries],
        "no ledger entries (the server logs to a chain with `splitverify demo --chain`)")


def json_script(element_id: str, data) -> str:
    """Data for the page's script, safe inside a <script> element."""
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def session(view: dict) -> str:
    """The live part of a session's page."""
    detection = view["detection"]
    banner = (f'<p class="detected banner">{escape(detection_text(detection))}</p>'
              if detection else "")
    facts = [("status", view["status"]), ("steps", view["steps"]),
             ("proofs verified by the server", view["proofs_verified"]),
             ("challenges drawn", view["challenges_drawn"]), ("last loss", view["last_loss"]),
             ("proof mode", view["proof_mode"])]
    cards = "".join(f'<div class="card"><div class="label">{escape(k)}</div>'
                    f'<div class="value" data-fact="{escape(k)}">'
                    f'{escape("–" if v is None else str(v))}</div></div>' for k, v in facts)
    ids = view["identities"]
    return (f'<h1>Session <code>{view["id_hex"][:16]}…</code></h1>{banner}'
            f'<div class="cards">{cards}</div>'
            f'<p class="note">{escape(view["model"])} · client {escape(str(ids["client"]))} · '
            f'server {escape(str(ids["server"]))}</p>'
            '<div class="charts"><div><h2>Loss and batch accuracy</h2><div id="chart-loss">'
            '</div></div><div><h2>Seconds per proof</h2><div id="chart-seconds"></div></div>'
            '</div>'
            f'{json_script("curves", view["curves"])}'
            f'<h2>Proofs</h2>{_proofs(view["proofs"])}'
            f'<h2>Steps</h2>{_timeline(view["timeline"])}'
            f'<h2>Key ceremony</h2>{_ceremony(view["ceremony"])}'
            f'<h2>Ledger</h2>{_ledger(view["ledger"])}')
