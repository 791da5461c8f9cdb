"""The privacy audit of what actually left: a run or query folder's ``outgoing/`` and the request
bodies it saved, checked file by file, written to ``privacy.json``.

Why audit the payloads and not the gallery: the gallery is a sample the report draws; the claim
"no face left this machine" is about every byte sent.  The prepare pipeline records those bytes
(:mod:`sovtp.deid.outgoing`); this module searches them with detectors independent of the
ones that chose what to blur, and compares them with the raw media where the index says where
that lives:

- images: faces still detectable (MediaPipe face detector, its FaceLandmarker, CenterFace;
  target 0) and, on request, dlib face re-identification against the raw frame;
- audio: waveform correlation with the raw audio (a raw copy correlates ~1; McAdams-anonymised
  speech does not) and, when Resemblyzer is installed, speaker similarity raw → sent;
- transcripts: PII the scrub rules still find in the words sent
  (:func:`sovtp.deid.audit_voice.pii_audit`);
- ``request.json`` files (query folders): any image or audio inlined there, and the image files
  they list, are audited as images/audio too.

Every image is decoded, checked and dropped before the next (no frame list is held).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.deid.audit import (
    DLIB_SAME_PERSON,
    IMAGE_EXTS,
    audit_stream,
    inconclusive_note,
    reid_detail,
)
from sovtp.deid.outgoing import decode_data_url, read_index

SPEAKER_THRESHOLD = 0.80  # Resemblyzer same-speaker cosine (as `sovtp audit --raw`)
RAW_COPY_CORRELATION = 0.9  # |r| at or above this: the sent audio is the raw waveform
PRIVACY_JSON = "privacy.json"
MODE_WORDS = {
    "deid": "made with --deid",
    "raw": "made WITHOUT --deid: raw frames were sent",
    "mixed": "some requests made without --deid",
    "unknown": "mode not recorded",
}


def outgoing_dir(folder: str | Path) -> Path | None:
    """The ``outgoing/`` folder of a run/query folder (or the folder itself), None if absent."""
    p = Path(folder)
    for cand in (p / "outgoing", p):
        if cand.is_dir() and ((cand / "index.jsonl").exists() or (cand / "images").is_dir()):
            return cand
    return None


def request_files(folder: str | Path) -> list[Path]:
    """The ``request.json`` files a query folder saved (one per subject folder)."""
    p = Path(folder)
    # regular files only: a FIFO named request.json would block the audit's read
    return sorted(f for f in p.rglob("request.json") if "outgoing" not in f.parts and f.is_file())


RUN_MARKERS = ("predictions.jsonl", "responses.jsonl", "gallery.jsonl", "config.json")


def is_run_folder(folder: str | Path) -> bool:
    """True for a ``bench``/``query`` output folder, whether or not it recorded what it sent."""
    p = Path(folder)
    return p.is_dir() and any((p / m).exists() for m in RUN_MARKERS)


def is_sent_folder(folder: str | Path) -> bool:
    """True for a folder that records what was sent (an ``outgoing/`` or saved requests) — or a
    run folder that should have (audited as such: it fails, saying nothing was recorded), never
    its gallery instead, which is only the first samples."""
    p = Path(folder)
    return p.is_dir() and (
        outgoing_dir(p) is not None or bool(request_files(p)) or is_run_folder(p)
    )


def _mode(index: list[dict[str, Any]]) -> str:
    """How the requests were made: ``deid`` (every one de-identified), ``raw`` (none),
    ``mixed``, or ``unknown`` (no index: request bodies only)."""
    flags = {bool(e.get("deid", True)) for e in index}
    if not flags:
        return "unknown"
    return "mixed" if len(flags) > 1 else ("deid" if flags == {True} else "raw")


def _missing(out: Path | None, index: list[dict[str, Any]]) -> list[str]:
    """Payload files the index lists that are not in ``outgoing/`` (deleted, moved): what was
    sent and can no longer be checked."""
    if out is None:
        return []
    names = {x["file"] for e in index for k in ("images", "audio") for x in e.get(k) or []}
    return sorted(n for n in names if not (out / n).is_file())


# -- what was sent, streamed ----------------------------------------------------------------
def _walk_strings(x: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(parent key, string)`` for every string in a JSON value."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _walk_strings(v, k)
    elif isinstance(x, list):
        for v in x:
            yield from _walk_strings(v, key)
    elif isinstance(x, str):
        yield key, x


def _sent_blobs(folder: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(kind, name, bytes)`` for every payload the folder holds: ``outgoing/`` files, images
    and audio inlined in ``request.json`` bodies, and the image files a request lists."""
    base = folder
    out = outgoing_dir(folder)
    if out is not None:
        for kind, sub in (("image", "images"), ("audio", "audio")):
            d = out / sub
            if d.is_dir():
                for f in sorted(d.iterdir()):
                    if f.is_file() and not f.name.startswith("."):
                        yield kind, str(f.relative_to(base)), f.read_bytes()
    for req in request_files(folder):
        rel = req.relative_to(base)
        try:
            body = json.loads(req.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            yield "unreadable", str(rel), b""  # what was sent cannot be checked: said, not passed
            continue
        n = 0
        for key, s in _walk_strings(body):
            got = decode_data_url(s) if s.startswith("data:") else None
            if got is not None:
                kind = "audio" if got[0].startswith("audio/") else "image"
                yield kind, f"{rel}#{n}", got[1]
                n += 1
            elif key == "data" and len(s) > 200 and not s.startswith("sha256:"):
                import base64
                import binascii

                try:
                    yield "audio", f"{rel}#{n}", base64.b64decode(s, validate=True)
                    n += 1
                except (binascii.Error, ValueError):
                    pass
        for name in body.get("images") or []:
            f = req.parent / str(name)
            if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                yield "image", str(f.relative_to(base)), f.read_bytes()


def _image(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class _RawFrames:
    """The raw frames outgoing images were made from, each source decoded once for all the
    frames the run sent of it (one pass, ``indices:a,b,c``) — not once per image — and only one
    source's frames held at a time (a run's images come source by source)."""

    def __init__(self, meta: dict[str, dict[str, Any]]) -> None:
        self._wanted: dict[str, set[int]] = {}
        for m in meta.values():
            if m.get("source") and m.get("frame_index") is not None:
                self._wanted.setdefault(m["source"], set()).add(int(m["frame_index"]))
        self._src: str | None = None
        self._frames: dict[int, np.ndarray] = {}

    def _load(self, src: str) -> None:
        from sovtp.media.video import iter_frames

        self._src, self._frames = src, {}
        if not Path(src).exists():
            return
        idx = ",".join(str(i) for i in sorted(self._wanted.get(src, ())))
        try:
            self._frames = {f.index: f.image for f in iter_frames(src, f"indices:{idx}")}
        except Exception:  # noqa: BLE001 - an unreadable raw file means "not reachable"
            self._frames = {}

    def get(self, meta: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
        """The raw frame of one outgoing image, scaled to it; None when unreachable or not a
        scaled full frame (a crop)."""
        src, idx = meta.get("source"), meta.get("frame_index")
        if not src or idx is None:
            return None
        if src != self._src:
            self._load(src)
        raw = self._frames.get(int(idx))
        if raw is None:
            return None
        from PIL import Image

        h, w = shape[:2]
        rh, rw = raw.shape[:2]
        if abs(rw / rh - w / h) > 0.02 * (w / h):
            return None
        return np.asarray(Image.fromarray(raw).resize((w, h), Image.Resampling.BILINEAR))


# -- the audit -------------------------------------------------------------------------------
def audit_sent(
    folder: str | Path,
    *,
    reid: bool = False,
    speaker: bool = True,
    speaker_threshold: float = SPEAKER_THRESHOLD,
    reid_threshold: float = DLIB_SAME_PERSON,
    names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Audit every payload a run/query folder records as sent; returns the ``privacy.json``
    summary (see the module docstring).  ``names``: known identities the transcripts must not
    name (e.g. a manifest's ``speaker`` column)."""
    folder = Path(folder)
    out = outgoing_dir(folder)
    index = list(read_index(out)) if out is not None else []
    meta: dict[str, dict[str, Any]] = {}
    audio_meta: dict[str, dict[str, Any]] = {}
    for e in index:
        for im in e.get("images") or []:
            meta.setdefault(im["sha256"], {**im, "source": e.get("source")})
        for a in e.get("audio") or []:
            audio_meta.setdefault(a["sha256"], {"raw": e.get("raw_audio") or e.get("source")})
    seen: set[str] = set()
    audio_blobs: list[tuple[str, str, bytes]] = []
    unchecked: list[str] = []  # payloads no detector could read: the audit cannot pass them
    raw_frames = _RawFrames(meta)

    def images() -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        for kind, name, data in _sent_blobs(folder):
            if kind == "unreadable":
                unchecked.append(name)
                continue
            sha = hashlib.sha256(data).hexdigest()
            if sha in seen:
                continue
            seen.add(sha)
            if kind == "audio":
                audio_blobs.append((name, sha, data))  # small; checked after the images
                continue
            try:
                img = _image(data)
            except Exception:  # noqa: BLE001 - not an image: nothing a detector can read
                unchecked.append(name)
                continue
            raw = raw_frames.get(meta[sha], img.shape) if reid and sha in meta else None
            yield name, img, raw

    missing = _missing(out, index)
    faces = audit_stream(images(), reid=reid, threshold=reid_threshold)
    img_block = {
        "n": faces["images"],
        "with_faces": len(faces["images_with_faces"]),
        "detections_by_detector": faces["faces_by_detector"],
        "files_with_faces": faces["images_with_faces"],
        "hits": faces["hits"],
        "reid": faces.get("reid"),
    }
    audio_block = _audit_audio(audio_blobs, audio_meta, speaker, speaker_threshold)
    texts = list(dict.fromkeys(e["transcript"] for e in index if e.get("transcript")))
    from sovtp.deid.audit_voice import pii_audit

    pii = pii_audit(texts, names)
    refused = [e for e in index if e.get("guard") == "refused"]
    summary: dict[str, Any] = {
        "target": str(folder),
        "mode": _mode(index),
        "recorded": out is not None or bool(request_files(folder)),
        "requests": len(index),
        "refused": len(refused),
        "refused_reasons": [
            {"query_id": e.get("query_id"), "reason": e.get("reason")} for e in refused[:20]
        ],
        "images": img_block,
        "audio": audio_block,
        "transcripts": {
            "n": len(texts),
            "with_pii": len({i for i, _ in pii.leftovers} | set(pii.names_found)),
            "kinds": sorted(
                {k for _, k in pii.leftovers} | ({"NAME"} if pii.names_found else set())
            ),
            "names_checked": len(names),
        },
        "unchecked": unchecked,
        "missing": missing,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    summary["reasons"] = fail_reasons(summary)
    summary["verdict"] = "fail" if summary["reasons"] else "pass"
    return summary


def fail_reasons(summary: dict[str, Any]) -> list[str]:
    """Why an audit fails, one phrase each (empty: it passes).  Beyond what the detectors find,
    an audit that checked nothing, or could not check something that was sent, cannot pass."""
    im, au, tr = summary["images"], summary["audio"], summary["transcripts"]
    out: list[str] = []
    if not summary.get("recorded", True):
        out.append(
            "this run recorded nothing of what it sent (no outgoing/, no request.json): "
            "it cannot be audited — rerun it with this sovtp, which records every request"
        )
    elif im["n"] + au["n"] + tr["n"] == 0 and not summary.get("missing"):
        every_refused = summary["requests"] > 0 and summary["refused"] == summary["requests"]
        if not every_refused:
            out.append("nothing to check: no image, audio or transcript was found as sent")
    if im["with_faces"]:
        mode = summary.get("mode")
        raw = " (a run made without --deid sends faces as they are)" if mode == "raw" else ""
        out.append(f"{im['with_faces']} sent image(s) hold a detectable face{raw}")
    if ((im.get("reid") or {}).get("reidentified") or 0) > 0:
        out.append(f"{im['reid']['reidentified']} face(s) re-identified")
    if au["raw_copies"]:
        out.append(f"{au['raw_copies']} sent audio file(s) are the raw voice")
    if au.get("above_speaker_threshold", 0):
        out.append(f"{au['above_speaker_threshold']} sent audio file(s) keep the speaker")
    link = au.get("lazy_informed") or {}
    if link and not link.get("passed", True):
        out.append(
            f"{link.get('linked')} of {len(link.get('same') or [])} same-speaker pair(s) of sent audio "
            "are linkable to each other (lazy-informed attacker)"
        )
    if tr["with_pii"]:
        out.append(f"{tr['with_pii']} transcript(s) hold PII")
    if summary.get("missing"):
        out.append(f"{len(summary['missing'])} payload(s) the index lists are missing")
    if summary.get("unchecked"):
        out.append(f"{len(summary['unchecked'])} payload(s) could not be read")
    return out


def _audit_audio(
    blobs: list[tuple[str, str, bytes]],
    meta: dict[str, dict[str, Any]],
    speaker: bool,
    threshold: float,
) -> dict[str, Any]:
    """Raw-copy correlation and speaker similarity of each sent audio against its raw source."""
    from sovtp.errors import MediaError
    from sovtp.media.audio import load_audio, read_wav_bytes

    files: list[dict[str, Any]] = []
    enc = None
    enc_note = None
    raw_cache: dict[tuple[str, int], np.ndarray] = {}
    raw_emb: dict[tuple[str, int], np.ndarray] = {}  # its speaker embedding, once per raw file
    anon: list[tuple[str, np.ndarray, int, np.ndarray]] = []  # (raw source, sent, rate, embedding)
    for name, sha, data in blobs:
        row: dict[str, Any] = {"file": name}
        try:
            sent, rate = read_wav_bytes(data)
        except Exception as e:  # noqa: BLE001 - a payload that is no WAV is reported, not audited
            row["note"] = f"not a WAV payload ({e.__class__.__name__})"
            files.append(row)
            continue
        src = (meta.get(sha) or {}).get("raw")
        raw = None
        if src and Path(src).exists():
            key = (src, rate)
            if key not in raw_cache:
                raw_cache.clear()  # one raw file at a time
                raw_emb.clear()
                try:
                    raw_cache[key] = load_audio(src, rate)[0]
                except MediaError:
                    raw_cache[key] = np.zeros(0, np.float32)
            raw = raw_cache[key]
        if raw is None or not len(raw):
            row["note"] = "raw not available"
            files.append(row)
            continue
        n = min(len(sent), len(raw))
        corr = float(np.corrcoef(sent[:n], raw[:n])[0, 1]) if n > 1 else 0.0
        row["correlation"] = round(0.0 if np.isnan(corr) else corr, 4)
        row["raw_copy"] = abs(row["correlation"]) >= RAW_COPY_CORRELATION
        if speaker and enc is None and enc_note is None:
            try:
                from sovtp.deid.audit_voice import SpeakerEncoder

                enc = SpeakerEncoder()
            except Exception as e:  # noqa: BLE001 - Resemblyzer or its weights missing
                enc_note = f"speaker encoder not available ({e.__class__.__name__}: {e})"
        if enc is not None:
            if key not in raw_emb:
                raw_emb[key] = enc.embed(raw, rate)
            emb = enc.embed(sent, rate)
            anon.append((src, sent, rate, emb))  # for the lazy-informed attacker below
            sim = float(np.dot(raw_emb[key], emb))
            row["speaker_similarity"] = round(sim, 4)
            row["same_speaker"] = sim >= threshold
        files.append(row)
    compared = [r for r in files if "correlation" in r]
    out: dict[str, Any] = {
        "n": len(blobs),
        "compared_with_raw": len(compared),
        "raw_copies": sum(bool(r.get("raw_copy")) for r in files),
        "files": files,
    }
    if speaker:
        out["speaker_threshold"] = threshold
        out["above_speaker_threshold"] = sum(bool(r.get("same_speaker")) for r in files)
        if enc_note:
            out["speaker_note"] = enc_note
        if len(anon) > 1:  # VoicePrivacy's lazy-informed attacker: anonymised vs anonymised
            from sovtp.deid.audit_voice import lazy_informed_audit

            link = lazy_informed_audit(
                [(k, x, r) for k, x, r, _ in anon], threshold, embeddings=[e for *_, e in anon]
            ).to_dict()
            out["lazy_informed"] = link
    if blobs and not compared:
        out["note"] = "raw not available"
    return out


def pii_detail(transcripts: dict[str, Any]) -> str:
    """The transcripts' result in prose — ``with PII left: 2 (NAME, PHONE)`` — for the audit's
    table and the report's, which would otherwise show a Python list."""
    kinds = transcripts.get("kinds") or []
    n = transcripts.get("with_pii", 0)
    return f"with PII left: {n}" + (f" ({', '.join(kinds)})" if kinds else "")


def table(summary: dict[str, Any]) -> str:
    """A short plain-text table of the audit, and its verdict."""
    im, au, tr = summary["images"], summary["audio"], summary["transcripts"]
    by = ", ".join(f"{k} {v}" for k, v in im["detections_by_detector"].items())
    rows = [
        (
            "images sent",
            f"{im['n']}",
            f"with a detectable face: {im['with_faces']} (target 0); {by}",
        ),
    ]
    reid = im.get("reid")
    if reid:
        rows.append(
            (
                "face re-id",
                f"{reid.get('faces', 0)}",
                f"re-identified: {reid.get('reidentified')} ({reid_detail(reid)})",
            )
            if reid.get("available")
            else ("face re-id", "-", f"skipped: {reid.get('reason')}")
        )
    sp = au.get("above_speaker_threshold")
    rows.append(
        (
            "audio sent",
            f"{au['n']}",
            au.get("note")
            or f"compared with raw: {au['compared_with_raw']}; raw copies: {au['raw_copies']}"
            + ("" if sp is None else f"; same speaker: {sp}"),
        )
    )
    rows.append(("transcripts", f"{tr['n']}", pii_detail(tr)))
    rows.append(("refused", f"{summary['refused']}", f"of {summary['requests']} requests"))
    bad = summary.get("unchecked") or []
    if bad:
        rows.append(("unreadable", f"{len(bad)}", "could not be checked: " + ", ".join(bad[:5])))
    gone = summary.get("missing") or []
    if gone:
        rows.append(
            ("missing", f"{len(gone)}", "listed as sent, not on disk: " + ", ".join(gone[:5]))
        )
    w = max(len(r[0]) for r in rows)
    mode = MODE_WORDS.get(summary.get("mode", "unknown"), summary.get("mode"))
    lines = [f"privacy audit — {summary['target']} ({mode})"]
    lines += [f"  {a:<{w}}  {b:>6}  {c}" for a, b, c in rows]
    for f in im["files_with_faces"][:20]:
        lines.append(f"  face found in: {f}")
    lines.append(f"  verdict: {summary['verdict'].upper()}{inconclusive_note(im.get('reid'))}")
    for r in summary.get("reasons") or []:
        lines.append(f"  fails: {r}")
    return "\n".join(lines)
