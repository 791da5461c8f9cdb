"""The privacy section of a run's report: what left the machine, and whether the audit passed.

Read from ``privacy.json`` (written by ``sovtp audit RUN``).  A run that recorded its outgoing
payloads but was never audited gets a cheap summary from ``outgoing/index.jsonl`` (requests,
images and audio sent, refusals) and a note to run the audit — the report never runs detectors.
Pure data → a titled table and notes; the report builder renders them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sovtp.deid.audit import inconclusive_note, reid_detail


def _from_audit(p: dict[str, Any]) -> dict[str, Any]:
    im, au, tr = p.get("images") or {}, p.get("audio") or {}, p.get("transcripts") or {}
    by = im.get("detections_by_detector") or {}
    rows: list[list[Any]] = [
        ["requests", p.get("requests", 0), f"refused by the guard: {p.get('refused', 0)}"],
        [
            "images sent",
            im.get("n", 0),
            f"with a detectable face: {im.get('with_faces', 0)} (target 0)"
            + (f" — {', '.join(f'{k} {v}' for k, v in by.items())}" if by else ""),
        ],
    ]
    reid = im.get("reid")
    if reid:
        rows.append(
            [
                "face re-identification",
                reid.get("faces", 0),
                f"re-identified: {reid.get('reidentified')} "
                f"(same person < {reid.get('threshold')}; {reid_detail(reid)})",
            ]
            if reid.get("available")
            else ["face re-identification", "-", f"skipped: {reid.get('reason')}"]
        )
    detail = au.get("note") or (
        f"compared with raw: {au.get('compared_with_raw', 0)}; "
        f"raw copies: {au.get('raw_copies', 0)}"
        + (
            f"; same speaker: {au['above_speaker_threshold']} "
            f"(cosine ≥ {au.get('speaker_threshold')})"
            if "above_speaker_threshold" in au
            else ""
        )
    )
    rows.append(["audio sent", au.get("n", 0), detail])
    from sovtp.deid.audit_run import MODE_WORDS, pii_detail

    rows.append(["transcripts sent", tr.get("n", 0), pii_detail(tr)])

    mode = p.get("mode")
    notes = [
        f"Privacy audit verdict: {str(p.get('verdict', '?')).upper()}"
        f"{inconclusive_note(im.get('reid'))} (checked {p.get('checked_at', '?')})"
        + (f"; the run was {MODE_WORDS.get(mode, mode)}." if mode else ".")
    ]
    notes += [f"It fails: {r}." for r in p.get("reasons") or []]
    for f in (im.get("files_with_faces") or [])[:10]:
        notes.append(f"A face is detectable in {f}.")
    for f in (p.get("unchecked") or [])[:10]:
        notes.append(f"Could not be checked (unreadable): {f}.")
    for f in (p.get("missing") or [])[:10]:
        notes.append(f"Listed as sent but missing from outgoing/: {f}.")
    if au.get("speaker_note"):
        notes.append(au["speaker_note"])
    return {
        "title": "Privacy: what left the machine",
        "table": (["check", "n", "result"], rows),
        "notes": notes,
    }


def _from_index(out: Path) -> dict[str, Any] | None:
    from sovtp.deid.outgoing import read_index

    n = refused = 0
    images: set[str] = set()
    audio: set[str] = set()
    texts = 0
    for e in read_index(out):
        n += 1
        refused += e.get("guard") == "refused"
        images.update(i["sha256"] for i in e.get("images") or [])
        audio.update(a["sha256"] for a in e.get("audio") or [])
        texts += bool(e.get("transcript"))
    if n == 0:
        return None
    rows: list[list[Any]] = [
        ["requests", n, f"refused by the guard: {refused}"],
        ["images sent", len(images), "not audited"],
        ["audio sent", len(audio), "not audited"],
        ["requests with a transcript", texts, "not audited"],
    ]
    return {
        "title": "Privacy: what left the machine",
        "table": (["check", "n", "result"], rows),
        "notes": [f"Not audited yet: run `sovtp audit {out.parent}` to search these payloads."],
    }


def privacy_section(run: str | Path) -> dict[str, Any] | None:
    """``{"title", "table": (header, rows), "notes"}`` for a run folder, or None when the run
    recorded nothing about privacy (no ``privacy.json``, no ``outgoing/index.jsonl``)."""
    run = Path(run)
    audit = run / "privacy.json"
    damaged = None
    if audit.exists():
        try:
            return _from_audit(json.loads(audit.read_text()))
        except (json.JSONDecodeError, AttributeError, TypeError) as e:
            damaged = f"privacy.json could not be read ({type(e).__name__}); rerun `sovtp audit`."
    out = run / "outgoing"
    sec = _from_index(out) if out.is_dir() else None
    if damaged and sec is not None:  # the index says less, but what it says is true
        sec["notes"] = [damaged, *sec["notes"]]
    return sec
