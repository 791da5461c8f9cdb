"""``sovtp prompt MANIFEST --id ID``: the prompt of one manifest row, built the way ``sovtp bench``
builds it, so what a run will send is seen before the run.

A bench sample carries more than its media: an interval of a longer video, a transcript, an
audio file (sent anonymised to omni models, its prosody worded), a physiological recording (the
``physio`` column, worded as cues), people's names (``speaker``, scrubbed under ``--deid``) and
per-face gold labels (one query per labelled face).  The queries are built by
:func:`sovtp.export.queries.sample_queries`, the bench worker's steps on the one prepare
pipeline.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from sovtp.data.sample import ManifestError, Sample


def find_row(manifest: Path, sample_id: str, root: Path | None = None) -> Sample:
    """The manifest row whose ID is ``sample_id`` (every split and fold is searched); refused
    with the closest IDs when there is none."""
    from sovtp.data.manifest import read_manifest

    ids: list[str] = []
    for s in read_manifest(manifest, root):
        if s.id == sample_id:
            return s
        ids.append(s.id)
    near = difflib.get_close_matches(sample_id, ids, n=3)
    hint = f"; closest: {', '.join(near)}" if near else f"; it has {len(ids)} row(s)"
    raise ManifestError(f"{manifest}: no row with id {sample_id!r}{hint}")


def row_facts(s: Sample) -> list[tuple[str, str]]:
    """What the row carries, as (column, value) pairs for the terminal."""
    out = [("id", s.id), ("media", str(s.media)), ("gold", s.label or "-")]
    for k in ("split", "fold", "subject", "start_frame", "end_frame", "start_s", "end_s"):
        v = getattr(s, k)
        if v is not None:
            out.append((k, str(v)))
    if s.transcript:
        out.append(("transcript", s.transcript))
    if s.audio:
        out.append(("audio", str(s.audio)))
    if s.face_labels:
        out.append(
            ("face_labels", ", ".join(f"{k}: {v}" for k, v in sorted(s.face_labels.items())))
        )
    for k, v in (s.meta or {}).items():
        out.append((k, str(v)))
    return out


def sent_facts(q: Any) -> str:
    """What the query sends beside the images: transcript, audio part, physiology."""
    parts = [
        p.get("type") for m in q.messages for p in (m.get("content") or []) if isinstance(p, dict)
    ]
    audio = "input_audio" in parts
    return f"subject {q.subject}, {parts.count('image_url')} image(s), audio part {'yes' if audio else 'no'}"


def write_query(out: Path, q: Any, images: list[Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(images):
        (out / f"image_{k}.jpg").write_bytes(im.jpeg)
    (out / "prompt.txt").write_text(q.text() + "\n")
    (out / "query.json").write_text(json.dumps(q.redacted(), indent=1))


def prompt_row_cmd(
    manifest: Path,
    sample_id: str,
    spec: Any,
    options: Any,
    labels: Any,
    subject: str | int | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """The CLI side: the row's columns (stderr), each prompt's text (stdout; ``--json``: a list
    of each query's messages), the images and query under ``out``."""
    from rich.table import Table

    from sovtp.cli.console import console
    from sovtp.cli.options import out_folder
    from sovtp.export.queries import sample_queries
    from sovtp.prepare import Preparer

    if manifest.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise ManifestError(f"--id needs a .csv or .jsonl manifest as MEDIA, not {manifest.name}")
    sample = find_row(manifest, sample_id)
    con = console(stderr=True)
    t = Table(title=f"{manifest.name} · {sample.id}", show_header=False)
    for k, v in row_facts(sample):
        t.add_row(k, v)
    con.print(t)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in sample.id)[:80]
    base = out_folder(out or Path("sovtp-prompt") / f"{manifest.stem}-{safe}")
    with Preparer(options) as prep:
        built = sample_queries(
            prep, sample, spec, labels=labels, subject=subject, root=manifest.parent
        )
    messages = []
    several = len(built) > 1  # labelled faces, or --subject all: one prompt per face
    for q, images in built:
        where = base / f"face_{q.subject}" if several else base
        write_query(where, q, images)
        messages.append(q.messages)
        if not as_json:
            if several:
                gold = sample.face_labels.get(q.subject, sample.label or "-")
                con.print(f"[bold]face {q.subject}[/bold] (gold {gold})", highlight=False)
            print(q.text())
            con.print(f"[dim]{spec.id} ({q.spec_hash}): {sent_facts(q)} → {where}[/dim]")
    if as_json:
        print(json.dumps(messages if several else messages[0]))
