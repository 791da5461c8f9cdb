"""Privacy audit, faces part: can a face still be found, and can it still be recognised?

(a) **Detectable faces** in every outgoing image, by detectors other than — and beside — the ones
that chose what to blur: MediaPipe's FaceLandmarker (the annotator's model: it searches the
frame, and tiles of a wide one), MediaPipe's face detector and CenterFace.  Target: 0.

(b) **Re-identification**: dlib's face recognition ResNet (128-D, CC0; "same person" below a
Euclidean distance of 0.6 — dlib's own threshold, 99.38 % on LFW) compares each raw face with the
same place in the de-identified image.  The attacker is given the best case: the de-identified
face is aligned with the *raw* face's five landmarks (a blurred face has none to find).  The
issue's measure is the share of faces whose distance is at or above the threshold
(``below_threshold`` counts the others).  The control that measure lacks is the **blank floor**:
the least distance from the raw face to an identity-free image — the whole picture one flat grey,
black to white (:data:`BLANKS`), under the same alignment — what an obscuring that leaves *nothing* of
the face can score.  For some faces dlib puts that floor near or below 0.6 (LFW face 29 of
``skimage.data.lfw_subset()``: 0.56 against light grey; half faces cut by the frame edge, where
dlib pads the chip with the same black in both images: 0.48 against black), so dlib would
"re-identify" them from a blank.  A face therefore counts as **re-identified** when its distance
is below the threshold *and* below its floor — the de-identified image tells dlib more about the
person than some blank does.  The faces under the threshold but not under their floor are
counted apart (``at_blank_floor``) and reported as *inconclusive*: dlib cannot tell them from a
blank, so this check can neither clear nor convict them (``benchmarks/face_reid.py`` measures
both).  dlib comes from ``dlib-bin``
(Boost licence) and its two model files from the resolver (``face_recognition_models`` sdist);
without dlib, part (b) reports itself skipped with the reason rather than inventing a score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sovtp.closeable import Closeable

DLIB_SAME_PERSON = 0.6
# identity-free images, whole frames of one grey: the blank floor is the raw face's least distance
# to one of them.  Light greys came closest to some faces (LFW 29: 0.545 at 248), black to half
# faces at the frame edge; the distance is not smooth in the grey level (a grid of 32 missed
# LFW 29's minimum by 0.019, one of 16 by 0.007), hence every 4th level.  A face whose aligned
# chip lies inside the frame sees a flat chip whatever the alignment, so those 65 embeddings
# (0.18 s each on 2 cores) are computed once per process; a face cut by the frame edge is
# measured against EDGE_BLANKS only — a coarser grid can only raise the floor, so the audit errs
# towards "re-identified", never towards "inconclusive".
BLANKS = (*range(0, 256, 4), 255)
EDGE_BLANKS = (*range(0, 256, 32), 255)
_FLAT_CHIPS: dict[str, np.ndarray] = {}  # embedder name → BLANKS' embeddings as flat chips
EDGE_PX = 2  # a raw face box this close to the frame's edge is a cut face (see confirmed)
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}


class _Landmarker:
    """MediaPipe FaceLandmarker as a detector: faces found per image (tiles on wide ones)."""

    def __init__(self) -> None:
        from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

        self.det = MediaPipeAnnotator(DetectorConfig(pose=False, track=False, max_faces=10))
        self.det.__enter__()

    def __call__(self, image: np.ndarray) -> list[tuple[float, ...]]:
        self.det.start_clip()
        return [f.bbox for f in self.det.detect(np.ascontiguousarray(image[..., :3])).faces]

    def close(self) -> None:
        self.det.close()


class FaceCounter(Closeable):
    """The detectable-faces check, one image at a time (streams: no frame is kept).  Holds the
    detectors open across images; close it (or use ``with``)."""

    def __init__(self) -> None:
        from sovtp.deid.faces import FaceFinder

        self.finder = FaceFinder()
        self.lm = _Landmarker()

    def hits(self, image: np.ndarray) -> list[dict[str, Any]]:
        """``{detector, box}`` for every face any of the three detectors finds in ``image``."""
        out = [
            {"detector": d.source, "box": [round(v, 1) for v in d.box]}
            for d in self.finder.find(image)
        ]
        out += [
            {"detector": "mediapipe_landmarker", "box": [round(float(v), 1) for v in b]}
            for b in self.lm(image)
        ]
        return out

    def close(self) -> None:
        self.lm.close()
        self.finder.close()


class DlibEmbedder:
    """dlib's 5-point aligner + face recognition ResNet, model files from the resolver."""

    name = "dlib_face_recognition_resnet_model_v1"

    def __init__(self) -> None:
        import dlib

        from sovtp import assets

        self._dlib = dlib
        self.sp = dlib.shape_predictor(str(assets.resolve("dlib_shape_predictor_5")))
        self.rec = dlib.face_recognition_model_v1(str(assets.resolve("dlib_face_recognition")))

    def shape(self, image: np.ndarray, box: tuple[float, ...]):
        x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
        return self.sp(np.ascontiguousarray(image[..., :3]), self._dlib.rectangle(x0, y0, x1, y1))

    def embed(self, image: np.ndarray, shape) -> np.ndarray:
        chip = self._dlib.get_face_chip(np.ascontiguousarray(image[..., :3]), shape, size=150)
        return self.embed_chip(chip)

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        return np.asarray(self.rec.compute_face_descriptor(chip), dtype=np.float64)

    def chip_inside(self, size: tuple[int, ...], shape) -> bool:
        """Whether the aligned 150-px chip lies wholly inside an image of ``size`` (no padding
        past the edge): then the chip of a flat image is flat whatever the alignment."""
        probe = np.ones((size[0], size[1], 3), np.uint8)
        return bool((self._dlib.get_face_chip(probe, shape, size=150) == 1).all())


def blank_floor(emb: DlibEmbedder, face: np.ndarray, size: tuple[int, ...], shape) -> float:
    """A face's blank floor: the least distance from its embedding ``face`` to a flat image of
    ``size`` under ``shape``'s alignment — :data:`BLANKS` as flat chips (embedded once per
    process) when the chip lies inside the frame, else :data:`EDGE_BLANKS` through the alignment
    (the padding past the edge is part of what dlib sees)."""
    if emb.chip_inside(size, shape):
        if emb.name not in _FLAT_CHIPS:
            _FLAT_CHIPS[emb.name] = np.stack(
                [emb.embed_chip(np.full((150, 150, 3), v, np.uint8)) for v in BLANKS]
            )
        blanks = _FLAT_CHIPS[emb.name]
    else:
        flat = np.empty((size[0], size[1], 3), np.uint8)
        rows = []
        for v in EDGE_BLANKS:
            flat.fill(v)
            rows.append(emb.embed(flat, shape))
        blanks = np.stack(rows)
    return float(np.linalg.norm(blanks - face, axis=1).min())


class Reidentifier:
    """Re-identification distances accumulated one (raw, de-identified) pair at a time."""

    def __init__(self, threshold: float = DLIB_SAME_PERSON, finder=None) -> None:
        self.threshold = threshold
        self.emb = DlibEmbedder()  # ImportError without dlib: the caller reports it skipped
        self._own = finder is None
        if finder is None:
            from sovtp.deid.faces import FaceFinder

            finder = FaceFinder()
        self.finder = finder
        self.dists: list[float] = []
        self.floors: list[float] = []  # raw face → the nearest blank (BLANKS), same alignment
        self.hog = self.emb._dlib.get_frontal_face_detector()
        self.unconfirmed = 0  # raw boxes only one detector saw: not counted (see confirmed)

    def confirmed(self, raw: np.ndarray) -> list:
        """The faces of ``raw`` that two detectors agree on, at the same place (IoU ≥ 0.3 or
        one box's centre inside the other): MediaPipe's face detector, CenterFace and dlib's
        HOG frontal detector vote.  One detector alone is no face to re-identify: MediaPipe
        alone finds two "faces" on ``skimage.data.chelsea()`` (a cat) and alone or with HOG
        none of them is a person; a painted false face in a background was "re-identified" in
        36 of 80 frames because the unobscured paint matched itself.  A box at the frame's
        edge (within :data:`EDGE_PX`) counts on one detector's word: a face cut by the edge is
        what HOG and the second detector miss (the entering clip's half face: CenterFace only),
        so there the audit errs towards counting.  The others are counted in
        ``unconfirmed``."""
        from sovtp.deid.tracks import _overlaps, merge

        dets = self.finder.find(raw)
        hog = [
            (float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))
            for r in self.hog(np.ascontiguousarray(raw[..., :3]), 1)
        ]
        h, w = raw.shape[:2]
        out = []
        for det in merge(dets):
            votes = {d.source for d in dets if _overlaps(d.box, det.box)}
            votes |= {"dlib_hog"} if any(_overlaps(b, det.box) for b in hog) else set()
            x0, y0, x1, y1 = det.box[:4]
            cut = x0 <= EDGE_PX or y0 <= EDGE_PX or x1 >= w - EDGE_PX or y1 >= h - EDGE_PX
            if len(votes) >= 2 or cut:
                out.append(det)
            else:
                self.unconfirmed += 1
        return out

    def add(self, raw: np.ndarray, deid: np.ndarray) -> list[float]:
        """Distances of each face found in ``raw`` (and confirmed by a second detector:
        :meth:`confirmed`) to the same place in ``deid`` (same size); each face's blank floor
        is kept beside it (see the module docstring)."""
        out = []
        for det in self.confirmed(raw):
            shape = self.emb.shape(raw, det.box)
            e = self.emb.embed(raw, shape)
            out.append(float(np.linalg.norm(e - self.emb.embed(deid, shape))))
            self.floors.append(blank_floor(self.emb, e, np.asarray(raw).shape, shape))
        self.dists += out
        return out

    def summary(self) -> dict[str, Any]:
        d, n = self.dists, len(self.dists)
        under = [k for k, x in enumerate(d) if x < self.threshold]
        at_floor = sum(d[k] >= self.floors[k] for k in under)
        return {
            "available": True,
            "embedder": self.emb.name,
            "threshold": self.threshold,
            "faces": n,
            "unconfirmed": self.unconfirmed,  # one detector only: not a face to re-identify
            "reidentified": len(under) - at_floor,
            "below_threshold": len(under),
            "at_blank_floor": at_floor,  # inconclusive: a blank scores as close
            "blanks": f"{len(BLANKS)} flat greys 0-255 ({len(EDGE_BLANKS)} at the frame edge)",
            # the measure: faces at or above the same-person distance (target ≥ 0.99)
            "below_threshold_share": None if n == 0 else round(1 - len(under) / n, 4),
            "min_distance": None if n == 0 else round(min(d), 4),
            "mean_distance": None if n == 0 else round(float(np.mean(d)), 4),
            "min_floor": None if n == 0 else round(min(self.floors), 4),
        }

    def close(self) -> None:
        if self._own:
            self.finder.close()


def reid_detail(reid: dict[str, Any]) -> str:
    """How many faces fell under the threshold and how many of those a blank scores as well."""
    under = reid.get("below_threshold", reid.get("reidentified", 0))
    floor = reid.get("at_blank_floor", 0)
    text = f"{under} under the threshold"
    if reid.get("unconfirmed"):
        text += f"; {reid['unconfirmed']} raw box(es) only one detector saw, not counted"
    if floor:
        text += (
            f", {floor} of them inconclusive: no closer than a blank image is (dlib cannot tell"
            " these faces from a blank)"
        )
    return text


def inconclusive_note(reid: dict[str, Any] | None) -> str:
    """What a verdict line adds when faces were inconclusive (empty when none were): the verdict
    does not count them, and must not read as if it had cleared them."""
    n = (reid or {}).get("at_blank_floor") or 0
    if not n:
        return ""
    return (
        f" — {n} face{'s' if n > 1 else ''} inconclusive: under the same-person distance but no "
        "closer than a blank image, so this check neither clears nor convicts "
        f"{'them' if n > 1 else 'it'}"
    )


def reid_unavailable(e: Exception) -> dict[str, Any]:
    return {"available": False, "reason": f"dlib is not installed ({e}); pip install dlib-bin"}


def reidentification(
    raw: Iterable[np.ndarray], deid: Iterable[np.ndarray], threshold: float = DLIB_SAME_PERSON
) -> dict[str, Any]:
    """Distances raw face → the same place after de-identification (see the module docstring).
    ``raw`` and ``deid`` are aligned pairs, consumed one at a time (iterators stream)."""
    try:
        rid = Reidentifier(threshold)
    except ImportError as e:
        return reid_unavailable(e)
    try:
        for r, d in zip(raw, deid, strict=True):
            rid.add(r, d)
    finally:
        rid.close()
    return rid.summary()


def audit_stream(
    items: Iterable[tuple[str, np.ndarray, np.ndarray | None]],
    reid: bool = False,
    threshold: float = DLIB_SAME_PERSON,
) -> dict[str, Any]:
    """The faces audit over ``(name, outgoing image, aligned raw image or None)`` items, one at a
    time (nothing is kept but the hits).  With ``reid``, each raw image is compared with its
    outgoing one.  ``passed``: no detector finds a face and no face is re-identified."""
    by: dict[str, int] = {"mediapipe_landmarker": 0, "mediapipe": 0, "centerface": 0}
    hits: dict[str, list[dict[str, Any]]] = {}
    n = 0
    rid: Reidentifier | None = None
    summary_reid: dict[str, Any] | None = None
    with FaceCounter() as fc:
        if reid:
            try:
                rid = Reidentifier(threshold, finder=fc.finder)
            except ImportError as e:
                summary_reid = reid_unavailable(e)
        for name, img, raw in items:
            n += 1
            h = fc.hits(img)
            for x in h:
                by[x["detector"]] += 1
            if h:
                hits[name] = h
            if rid is not None and raw is not None:
                rid.add(raw, img)
    if rid is not None:
        summary_reid = rid.summary()
    out: dict[str, Any] = {
        "images": n,
        "faces_detectable": sum(by.values()),
        "faces_by_detector": by,
        "images_with_faces": list(hits),
        "hits": hits,
    }
    if summary_reid is not None:
        out["reid"] = summary_reid
    out["passed"] = out["faces_detectable"] == 0 and not (summary_reid or {}).get("reidentified")
    return out


def audit_images(
    raw: list[np.ndarray] | None, deid: list[np.ndarray], threshold: float = DLIB_SAME_PERSON
) -> dict[str, Any]:
    """The faces audit of outgoing images ``deid`` (and, with ``raw`` aligned to them, the
    re-identification check); images are named by their index."""
    if raw is not None and len(raw) != len(deid):
        raise ValueError(f"{len(raw)} raw images for {len(deid)} de-identified ones")
    items = ((k, d, None if raw is None else raw[k]) for k, d in enumerate(deid))
    return audit_stream(items, reid=raw is not None, threshold=threshold)  # type: ignore[arg-type]


def iter_media(path: Path, max_frames: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, image)`` for each image of a file, decoded one at a time (a video's frames are
    named ``file#k``)."""
    from sovtp.media.video import iter_frames

    if path.suffix.lower() in IMAGE_EXTS:
        from sovtp.media.image import load_image

        yield path.name, load_image(path)
        return
    sampling = f"uniform:{max_frames}" if max_frames else "all"
    for k, f in enumerate(iter_frames(path, sampling)):
        yield f"{path.name}#{k}", f.image


def media_files(target: str | Path) -> list[Path]:
    """The image/video files to audit: a file, a folder of images/videos, or a run folder (its
    ``gallery/`` holds images that were sent)."""
    p = Path(target)
    if p.is_dir() and (p / "gallery").is_dir():
        p = p / "gallery"
    if p.is_file():
        return [p]
    return sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)


def iter_collect(target: str | Path, max_frames: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, image)`` over :func:`media_files`, streamed."""
    for f in media_files(target):
        yield from iter_media(f, max_frames)


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# Privacy audit — faces",
        "",
        f"- images checked: {summary['images']}",
        f"- faces still detectable: **{summary['faces_detectable']}** (target 0) — "
        + ", ".join(f"{k}: {v}" for k, v in summary["faces_by_detector"].items()),
    ]
    reid = summary.get("reid")
    if reid is None:
        lines.append("- re-identification: not run (no raw media given)")
    elif not reid.get("available"):
        lines.append(f"- re-identification: skipped — {reid['reason']}")
    else:
        lines.append(
            f"- re-identification ({reid['embedder']}, same person < {reid['threshold']}): "
            f"{reid['reidentified']} of {reid['faces']} faces re-identified; "
            f"{reid_detail(reid)}; min distance {reid['min_distance']}, mean "
            f"{reid['mean_distance']}"
        )
    lines.append(
        f"- verdict: **{'pass' if summary['passed'] else 'FAIL'}**{inconclusive_note(reid)}"
    )
    lines += [f"- fails: {r}" for r in summary.get("reasons") or []]
    return "\n".join(lines) + "\n"


def write_audit(summary: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``audit_faces.json`` and ``audit_faces.md`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / "audit_faces.json", out / "audit_faces.md"
    j.write_text(json.dumps(summary, indent=2, default=str))
    m.write_text(markdown(summary))
    return j, m
