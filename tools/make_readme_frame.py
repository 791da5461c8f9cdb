"""Write docs/annotated_frame.png: the README's picture of a frame as a model receives it.

The frame is made from ``skimage.data.astronaut()`` (public domain) — five heads on one canvas
(:func:`sovtp.render.demo.several_faces`) — so the repository holds no third-party image.  It is
detected with MediaPipe, drawn with every mark of the ``sovtp/full`` prompt, and shrunk to the
prompt builder's default size (768 px on the long side), exactly what a model sees.

    python tools/make_readme_frame.py [--out docs/annotated_frame.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

MAX_BYTES = 300_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/annotated_frame.png"))
    ap.add_argument("--size", type=int, default=768, help="long side of the image as sent")
    a = ap.parse_args()

    from PIL import Image

    from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator
    from sovtp.annotate.pipeline import annotate_frames
    from sovtp.render import VisualSpec, render_frame
    from sovtp.render.demo import several_faces
    from sovtp.types import Frame

    frame = Frame(0, 0.0, several_faces())
    with MediaPipeAnnotator(DetectorConfig()) as det:
        ann = annotate_frames([frame], det)[0]
    spec = VisualSpec(boxes=True, ids=True, landmarks="subset", au_overlay=True, pose=True)
    img = Image.fromarray(render_frame(frame, ann, spec, out_size=a.size))
    img.thumbnail((a.size, a.size), Image.Resampling.LANCZOS)  # as the prompt builder sends it
    a.out.parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out, optimize=True)
    if a.out.stat().st_size > MAX_BYTES:  # a photo in PNG: 256 colours keep it small and sharp
        img.quantize(256, method=Image.Quantize.MEDIANCUT).save(a.out, optimize=True)
    print(
        f"{a.out}: {img.size[0]}×{img.size[1]}, {len(ann.faces)} faces, "
        f"{a.out.stat().st_size // 1000} KB"
    )


if __name__ == "__main__":
    main()
