"""The gallery of a report: the annotated frame as sent, the prompt, the answer, the gold label
and the parse status of a few samples per system × variant, in the run's order.  User text
(prompts, answers) is HTML-escaped: a model's answer is data, never markup."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from sovtp.jsonl import iter_jsonl


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _stages_html(stages: dict[str, str]) -> str:
    """A staged answer's reasoning, stage by stage (empty for other contracts)."""
    if not stages:
        return ""
    from sovtp.contracts import STAGE_TITLES

    items = "".join(
        f"<li><b>{_esc(STAGE_TITLES.get(k, k))}</b>: {_esc(v)}</li>" for k, v in stages.items()
    )
    return f"<details open><summary>reasoning, stage by stage</summary><ol>{items}</ol></details>"


GALLERY_MAX = 48  # cards in the HTML report


def gallery_entries(
    run: Path, rep: dict[str, Any]
) -> list[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """``gallery.jsonl`` grouped by system × variant in the run's order — the scoring table's:
    systems by name, each system's variants (an ablation's rungs) as the run config / ladder
    lists them (``manifest.json``'s ``variants``) — each group's samples in sample order.  The runner writes
    entries as workers finish, so the file's own order is no order.  At most
    :data:`GALLERY_MAX` cards: the same first samples of every group, so rungs compare."""
    gal = list(iter_jsonl(run / "gallery.jsonl"))
    if not gal:
        return []
    rank = {(e["system"], e["variant"]): i for i, e in enumerate(rep["scoring"]["systems"])}
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for g in gal:  # a re-drawn entry (resume) replaces the earlier one
        key = (str(g.get("system") or ""), str(g.get("variant") or ""))
        groups.setdefault(key, {})[str(g.get("sample_id"))] = g
    keys = sorted(groups, key=lambda k: (rank.get(k, len(rank)), k))
    per = max(1, GALLERY_MAX // len(keys))
    return [(k, [groups[k][sid] for sid in sorted(groups[k])][:per]) for k in keys]


PARSE_CLASS = {"ok": "ok", "repaired": "rep"}  # anything else (invalid, error) is "bad"


def card_html(run: Path, g: dict[str, Any]) -> str:
    """One gallery card.  The answer is coloured by correctness (and says "right"/"wrong"
    in words); the parse status by parsing alone: a wrong answer that parsed is green there."""
    img = run / g["image"] if g.get("image") else None
    src = (
        ("data:image/jpeg;base64," + base64.b64encode(img.read_bytes()).decode())
        if img and img.exists()
        else None
    )
    status = g.get("parse_status")
    right = bool(g.get("label")) and g.get("label") == g.get("gold")
    cls = "ok" if right else "bad"
    verdict = "right" if right else ("wrong" if g.get("gold") is not None else "no gold")
    return (
        "<div class='card'>"
        + (f"<img alt='annotated frame' src='{src}'>" if src else "")
        + (
            "<div class='note'>drawn for this report: the system reads text only and was sent no image</div>"
            if src and g.get("image_sent") is False
            else ""
        )
        + f"<div><b>{_esc(g['sample_id'])}</b> · {_esc(g['system'])} · {_esc(g['variant'])}"
        + (f" · subject {_esc(g['subject'])}" if g.get("subject") is not None else "")
        + "</div>"
        f"<div>gold <b>{_esc(g.get('gold'))}</b> · answer <b class='{cls}'>{_esc(g.get('label'))}</b>"
        f" <span class='{cls}'>({verdict})</span>"
        f" · parse <span class='{PARSE_CLASS.get(str(status), 'bad')}'>{_esc(status)}</span></div>"
        + _stages_html(g.get("stages") or {})
        + f"<details><summary>prompt</summary><pre>{_esc(g.get('prompt'))}</pre></details>"
        f"<details><summary>answer</summary><pre>{_esc(g.get('error') or g.get('answer'))}</pre></details></div>"
    )
