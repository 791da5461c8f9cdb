"""ClipAnnotation + frames + PromptSpec → Query (text and marked images), a pure function.

Rendering marks is the expensive part of a prompt, so :class:`ImageCache` keeps the encoded
images per (visual marks, subject): the variants of an ablation that draw the same marks share
them, and only the text differs.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sovtp.facs import DEFAULT_THRESHOLD
from sovtp.labels import LabelSet, load_label_set
from sovtp.prompting.spec import PromptSpec, render_text
from sovtp.records import ImageRef, Query
from sovtp.render.marks import VisualSpec, grid, render_frame
from sovtp.types import ClipAnnotation, Frame


@dataclass(frozen=True)
class ImageOptions:
    max_side: int = 768
    quality: int = 85


@dataclass
class EncodedImage:
    array: np.ndarray
    jpeg: bytes
    ref: ImageRef

    @property
    def data_url(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode()


@dataclass
class ImageCache:
    entries: dict[tuple, list[EncodedImage]] = field(default_factory=dict)
    renders: int = 0


def encode_jpeg(img: np.ndarray, opts: ImageOptions) -> tuple[np.ndarray, bytes]:
    from PIL import Image

    im = Image.fromarray(img)
    if max(im.size) > opts.max_side:
        im.thumbnail((opts.max_side, opts.max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=opts.quality, optimize=False)
    return np.asarray(im), buf.getvalue()


def check_subject(how: str | int | None) -> str | int | None:
    """``how`` when it names a subject :func:`subjects` can choose, else a ValueError naming the
    accepted forms: checked where an option is read, so ``--subject nobody`` stops a command
    before any work rather than failing every sample."""
    if how is None or isinstance(how, int) or how.isdigit():
        return how
    if how in ("largest", "center", "central", "all"):  # "central": an old spelling of center
        return how
    raise ValueError(f"subject must be largest, center, all or a face ID (an integer), not {how!r}")


def choose_subject(clip: ClipAnnotation, how: str | int | None = "largest") -> int | None:
    """The subject face's track ID: 'largest' (mean area; the default), 'center' (nearest the
    frame centre on average), or a given ID.  ('all' is a loop over IDs, see
    :func:`subjects`.)"""
    ids = clip.track_ids
    if not ids:
        return None
    if isinstance(how, int) or (isinstance(how, str) and how.isdigit()):
        tid = int(how)
        if tid not in ids:
            raise ValueError(f"no face with ID {tid} in {clip.source} (IDs: {ids})")
        return tid
    if how in (None, "largest"):
        return max(ids, key=lambda t: (np.mean([f.area for f in clip.faces_of(t)]), -t))
    if how in ("center", "central"):

        def off(t: int) -> float:
            ds = []
            for fr in clip.frames:
                f = fr.face(t)
                if f is not None:
                    w, h = fr.size
                    ds.append(np.hypot(f.center[0] / w - 0.5, f.center[1] / h - 0.5))
            return float(np.mean(ds))

        return min(ids, key=lambda t: (off(t), t))
    check_subject(how)  # an unknown subject: the accepted forms
    raise ValueError("subject 'all' is one query per face (subjects()), not one face")


def subjects(clip: ClipAnnotation, how: str | int | None = "largest") -> list[int | None]:
    """The subjects one clip is asked about: every face ID for 'all', else the one chosen."""
    if how == "all":
        return list(clip.track_ids) or [None]
    return [choose_subject(clip, how)]


def pick_frames(n: int, budget: int) -> list[int]:
    """Positions of ``budget`` frames spread evenly over ``n`` sampled frames."""
    if n <= budget:
        return list(range(n))
    return (
        sorted({int(round(i * (n - 1) / (budget - 1))) for i in range(budget)})
        if budget > 1
        else [n // 2]
    )


def render_images(
    clip: ClipAnnotation,
    frames: list[Frame],
    visual: VisualSpec,
    subject: int | None,
    budget: int,
    use_grid: bool,
    opts: ImageOptions,
    cache: ImageCache | None = None,
) -> list[EncodedImage]:
    key = (visual, subject, budget, use_grid, opts)  # both dataclasses are frozen: hashable
    if cache is not None and key in cache.entries:
        return cache.entries[key]
    by_index = {fa.index: fa for fa in clip.frames}
    chosen = [frames[i] for i in pick_frames(len(frames), max(1, budget))]
    # marks are sized for the image as sent: a grid cell, or the longest side after resizing
    size = 384 if use_grid and len(chosen) > 1 else opts.max_side
    drawn = [
        (f, render_frame(f, by_index[f.index], visual, subject, out_size=size))
        for f in chosen
        if f.index in by_index
    ]
    if use_grid and len(drawn) > 1:
        drawn = [(drawn[0][0], grid([d for _, d in drawn]))]
    out = []
    for f, img in drawn:
        arr, jpeg = encode_jpeg(img, opts)
        ref = ImageRef(
            sha256=hashlib.sha256(jpeg).hexdigest(),
            width=arr.shape[1],
            height=arr.shape[0],
            frame_index=f.index,
            timestamp_s=round(f.timestamp_s, 3),
        )
        out.append(EncodedImage(arr, jpeg, ref))
    if cache is not None:
        cache.entries[key] = out
        cache.renders += 1
    return out


# FACS combinations a template may cite as examples: only those whose AUs were all measured on the
# subject are offered, so the prompt never cites a reading that could not have been made.
FACS_EXAMPLES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("AU6", "AU12"), "AU6+AU12 Duchenne smile"),
    (("AU1", "AU4", "AU15"), "AU1+AU4+AU15 sadness"),
    (("AU4", "AU7", "AU23"), "AU4+AU7+AU23 anger"),
    (("AU1", "AU2", "AU5", "AU26"), "AU1+AU2+AU5+AU26 surprise"),
    (("AU9", "AU10"), "AU9+AU10 disgust"),
)


def measured_aus(clip: ClipAnnotation, subject: int | None) -> set[str]:
    """The AUs measured (by any method) on the subject's face in any sampled frame."""
    out: set[str] = set()
    for fa in clip.frames:
        for f in fa.faces:
            if f.track_id == subject:
                out.update(f.aus)
    return out


def posture_status(clip: ClipAnnotation, subject: int | None) -> str:
    """'found' (a posture or NFBL cue for the subject), 'none_found' (its body was measured and
    nothing fired), 'no_body' (pose ran, no body linked to this face) or 'off' (pose did not
    run): "not measured" and "measured, nothing found" are different statements."""
    if any(c.kind in ("posture", "nfbl") and c.subject == subject for c in clip.cues):
        return "found"
    ran = clip.detectors.get("pose", "off") != "off" or any(fa.persons for fa in clip.frames)
    if not ran:
        return "off"
    has_body = any(p.face_id == subject for fa in clip.frames for p in fa.persons)
    return "none_found" if subject is not None and has_body else "no_body"


def prompt_context(
    clip: ClipAnnotation,
    spec: PromptSpec,
    labels: LabelSet,
    subject: int | None,
    n_images: int,
    frame_times: list[float],
    transcript: str | None = None,
    transcript_scrubbed: bool = False,
    faces_hidden: bool = False,
    sent: list[int] | None = None,
) -> dict[str, Any]:
    """The variables a template sees.  Everything user-supplied arrives here as plain data.
    ``sent``: the frame indices of the images sent (default: every frame), so the legend names
    only marks those images carry.
    ``transcript_scrubbed``: the transcript had its PII replaced by placeholders (``--deid``), so
    the prompt must not call it verbatim."""
    cues = clip.cues
    shown = [fa for fa in clip.frames if sent is None or fa.index in sent]
    people = next((c for c in cues if c.kind == "scene" and c.name == "people"), None)
    n_faces = people.value["count"] if people else 0
    where = people.value["where"].get(str(subject), "") if people else ""

    def of(kind: str, name: str | None = None, subj: int | None = subject) -> list[str]:
        return [
            c.text
            for c in cues
            if c.kind == kind and c.subject == subj and (name is None or c.name == name)
        ]

    au = of("au", "active_aus")
    au_cue = next(
        (c for c in cues if c.kind == "au" and c.name == "active_aus" and c.subject == subject),
        None,
    )
    parts = au_cue.value if au_cue is not None and isinstance(au_cue.value, dict) else {}
    measured = measured_aus(clip, subject)
    timeline = next(
        (c for c in cues if c.kind == "au" and c.name == "au_timeline" and c.subject == subject),
        None,
    )
    return {
        "labels": list(labels.labels),
        "n_images": n_images,
        "frame_times": [f"{t:.1f}" for t in frame_times],
        # what the measurements came from, for a prompt that carries no image
        "measured_on": (
            f"{len(clip.frames)} frames sampled from a video clip"
            if len(clip.frames) > 1
            else "one frame"
        ),
        "marks": asdict(spec.visual),
        "au_threshold": DEFAULT_THRESHOLD,  # what the AU labels and the AU text both use
        "cues": {k: k in spec.cues for k in ("au", "context")},
        "subject": None if subject is None else {"id": subject, "where": where, "n_faces": n_faces},
        "scene": [
            c.text
            for c in cues
            if c.kind == "scene" and c.name in ("people", "no_face", "shots", "faces_towards")
        ],
        "aus": au[0] if au else "",
        # the same text in parts, for templates that give each its own line
        "aus_active": parts.get("active_text", au[0] if au else ""),
        "au_unmeasured": parts.get("unmeasured_text", ""),
        "au_reference": parts.get("reference_text", ""),
        "occlusion": (of("head", "occlusion") or [None])[0],
        "au_timeline": [a["text"] for a in timeline.value["aus"]] if timeline else [],
        "unilateral": [
            c.text
            for c in cues
            if c.kind == "au" and c.subject == subject and c.name.endswith("_unilateral")
        ],
        "head": (of("head", "head_pose") or [None])[0],
        "gaze": (of("gaze") or [None])[0],
        "posture": of("posture") + of("nfbl"),  # NFBL from hands: self-touch, fidgeting
        "posture_status": posture_status(clip, subject),
        # what the images really show, so the legend claims no mark that is not drawn
        "drawn": {
            "bodies": any(fa.persons for fa in shown),
            "hands": any(fa.hands for fa in shown),
        },
        # the voice, measured on the raw audio (prosody): words only, never the voice itself
        "voice": [c.text for c in cues if c.kind == "audio"],
        # physiology aligned to the clip (PPG heart rate and HRV, EDA responses), as words
        "physio": [c.text for c in cues if c.kind == "physio"],
        "others": [
            {"id": c.subject, "text": c.text}
            for c in cues
            if c.kind == "expression" and c.subject is not None and c.subject != subject
        ],
        "transcript": transcript,
        "transcript_scrubbed": transcript_scrubbed,
        # --deid: the images' faces are obscured; AUs, head pose and gaze came from the raw frames
        "faces_hidden": faces_hidden,
        "facs_examples": [text for aus_, text in FACS_EXAMPLES if set(aus_) <= measured],
        "output": spec.output,
        "self_correct": spec.self_correct,
    }


def facs_payload(clip: ClipAnnotation, subject: int | None) -> dict[str, Any] | None:
    """Plain numbers for the offline FACS reasoner, copied from the clip's cues: the subject's
    mean AUs and sides, its posture names, and the others' prototype readings."""
    au = next(
        (
            c
            for c in clip.cues
            if c.kind == "au" and c.name == "active_aus" and c.subject == subject
        ),
        None,
    )
    if subject is None or au is None:
        return None
    others = []
    for c in clip.cues:
        if c.kind == "expression" and c.subject not in (None, subject):
            top = max(c.value, key=c.value.get)
            others.append({"id": c.subject, "top": top, "score": c.value[top]})
    apex = au.value.get("apex") or {}  # the frame that looks most like an emotion, not a mean
    return {
        "aus": apex.get("aus") or au.value["mean"],
        "sides": apex.get("sides") or au.value["sides"],
        "posture": [
            c.name for c in clip.cues if c.kind in ("posture", "nfbl") and c.subject == subject
        ],
        "others": others,
        # why an AU is missing (a turned head, an open mouth, a hand): the reasoner says so
        # instead of reading the absence as "no disgust"
        "unmeasured": {
            code: next(iter(g["why"]), "") for code, g in (au.value.get("unmeasured") or {}).items()
        },
    }


def build_query(
    clip: ClipAnnotation,
    frames: list[Frame],
    spec: PromptSpec,
    *,
    labels: LabelSet | str | list[str] | None = None,
    subject: str | int | None = "largest",
    transcript: str | None = None,
    image_options: ImageOptions | None = None,
    image_cache: ImageCache | None = None,
    query_id: str | None = None,
    max_images: int | None = None,
    transcript_scrubbed: bool = False,
    faces_hidden: bool = False,
) -> tuple[Query, list[EncodedImage]]:
    """The Query for one clip under one prompt spec, and the images it carries.

    ``max_images`` caps the spec's image budget (a backend's ``images_per_prompt``); 0 builds a
    text-only query and draws nothing — the offline FACS reasoner reads no pixels, so an
    ablation on it pays for no rendering.
    """
    ls = load_label_set(labels or spec.label_set)
    sid = choose_subject(clip, subject)
    opts = image_options or ImageOptions()
    budget = spec.max_images if max_images is None else min(spec.max_images, max_images)
    images = (
        render_images(clip, frames, spec.visual, sid, budget, spec.grid, opts, image_cache)
        if budget > 0
        else []
    )
    times = [i.ref.timestamp_s or 0.0 for i in images]
    # the frames render_images drew (one grid image holds several): the legend's marks
    sent = [frames[k].index for k in pick_frames(len(frames), max(1, budget))] if images else []
    text = render_text(
        spec,
        prompt_context(
            clip,
            spec,
            ls,
            sid,
            len(images),
            times,
            transcript,
            transcript_scrubbed,
            faces_hidden,
            sent=sent,
        ),
    )
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": im.data_url}} for im in images
    ]
    content.append({"type": "text", "text": text})
    messages: list[dict[str, Any]] = []
    if spec.system:
        messages.append({"role": "system", "content": spec.system})
    messages.append({"role": "user", "content": content})
    q = Query(
        id=query_id or f"{clip.sha256[:12]}:{spec.id}",
        messages=messages,
        images=[i.ref for i in images],
        spec_id=spec.id,
        spec_hash=spec.hash,
        labels=list(ls.labels),
        output=spec.output,  # type: ignore[arg-type]
        subject=sid,
        meta={
            "source": clip.source,
            "sampling": clip.sampling,
            "label_set": ls.name,
            "facs": facs_payload(clip, sid),
        },
    )
    return q, images
