"""The de-identification stage of the prepare pipeline, and the guard before a request leaves.

Order inside ``Preparer.query`` under ``--deid``: the annotation (AUs, head pose, cues) has been
measured on the raw frames; :func:`deidentify_for_prompt` then obscures every face (or every face
but the subject's, ``blur="others"``); the marks are drawn on the obscured frames with
:func:`deid_visual` (boxes and IDs, no landmarks: 478 points drawn over a blurred face trace its
outline, eyes, nose and mouth back onto it — the face geometry a re-identifier needs — and the
AU codes already travel as text); and :func:`assert_no_faces` looks at the encoded images once
more: a request whose image still shows a face is not sent.
"""

from __future__ import annotations

import atexit
import contextlib
from dataclasses import replace

import numpy as np

from sovtp.deid.body import near_hidden_face, on_body
from sovtp.deid.faces import BLUR_WHO, FaceFinder, deidentify_frames
from sovtp.deid.policy import WITHHELD_MARKS
from sovtp.types import ClipAnnotation, Frame, FrameAnnotation

_FINDER: FaceFinder | None = None


def shared_finder() -> FaceFinder:
    """One FaceFinder per process (opening the models costs ~1 s), closed at exit because
    MediaPipe's graphs must be closed before interpreter teardown."""
    global _FINDER
    if _FINDER is None:
        _FINDER = FaceFinder()
        atexit.register(_close_finder)
    return _FINDER


def _close_finder() -> None:
    global _FINDER
    if _FINDER is not None:
        with contextlib.suppress(RuntimeError):  # MediaPipe's executor may be gone at exit
            _FINDER.close()
        _FINDER = None


def deidentify_for_prompt(
    clip: ClipAnnotation,
    frames: list[Frame],
    subject: int | None,
    blur: str = "all",
    mode: str = "blur",
    finder: FaceFinder | None = None,
) -> list[Frame]:
    """The frames a prompt may show: every face obscured (``blur="all"``) or every face but the
    subject's track (``"others"``).  Annotation faces are matched to frames by frame index."""
    if blur not in BLUR_WHO:
        raise ValueError(f"blur must be one of {', '.join(BLUR_WHO)}, not {blur!r}")
    by_index = {fa.index: fa for fa in clip.frames}
    anns = [
        by_index.get(f.index) or FrameAnnotation(f.index, f.timestamp_s, f.size) for f in frames
    ]
    keep = {subject} if blur == "others" and subject is not None else None
    return deidentify_frames(frames, anns, mode, keep, finder=finder or shared_finder())


def deid_visual(visual):
    """The marks allowed over de-identified faces: everything but
    :data:`sovtp.deid.policy.WITHHELD_MARKS` (landmarks; see the module docstring).
    ``visual`` is a :class:`sovtp.render.marks.VisualSpec`."""
    return replace(visual, **WITHHELD_MARKS)


def _centre_in(box, allowed) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(a[0] <= cx <= a[2] and a[1] <= cy <= a[3] for a in allowed)


def assert_no_faces(
    images: list[np.ndarray],
    allowed: list[list[tuple[float, float, float, float]]] | None = None,
    finder: FaceFinder | None = None,
    annotations: list[FrameAnnotation | None] | None = None,
    notes: list[str] | None = None,
) -> list[str]:
    """The problems that stop a request: one line per face either detector still finds in an
    outgoing image (empty: it may be sent).  ``allowed`` gives, per image, boxes (in that
    image's pixels) whose faces may show — the subject under ``--blur others``.

    ``annotations`` (per image, measured on the raw frame, in its own pixels) let a hit pass
    where the FaceLandmarker fits no face mesh (:meth:`FaceFinder.has_mesh`) and that lies on a
    measured body part (:func:`sovtp.deid.body.on_body`: a coat, an arm, a hand) or in the
    zone of a face that was measured and hidden (:func:`sovtp.deid.body.near_hidden_face`:
    the marks drawn there — an ID tag on the hair, an AU label over a collar — read as faces).
    Why: the detectors refused a group photo and a filled portrait that held no face.  A mesh
    anywhere, or a hit away from every known person, is still refused.  Every pass is one line
    in ``notes``, when given."""
    finder = finder or shared_finder()
    problems = []
    for k, img in enumerate(images):
        ok = allowed[k] if allowed is not None and k < len(allowed) else []
        ann = annotations[k] if annotations is not None and k < len(annotations) else None
        arr = np.asarray(img)[..., :3]
        scale = (1.0, 1.0)
        if ann is not None and ann.size[0] and ann.size[1]:
            scale = (arr.shape[1] / ann.size[0], arr.shape[0] / ann.size[1])
        for d in finder.find(arr):
            if ok and _centre_in(d.box, ok):
                continue
            where = (
                "a body part"
                if on_body(d.box, ann, scale)
                else "a hidden face's zone"
                if near_hidden_face(d.box, ann, scale)
                else None
            )
            if where and not finder.has_mesh(arr, d.box):
                if notes is not None:
                    box = ", ".join(f"{v:.0f}" for v in d.box)
                    notes.append(
                        f"image {k}: {d.source} hit (score {d.score:.2f}, box {box}) lies on "
                        f"{where} and holds no face mesh: not a face"
                    )
                continue
            box = ", ".join(f"{v:.0f}" for v in d.box)
            problems.append(
                f"image {k}: a face is still detectable by {d.source} "
                f"(score {d.score:.2f}, box {box}); request not sent"
            )
    return problems
