"""py-feat's Fex columns become sovtp types (xywh → xyxy, dlib68, AU codes)."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sovtp.annotate.pyfeat import fex_to_frames  # noqa: E402
from sovtp.annotate.tracking import FaceTracker  # noqa: E402


def _fex():
    rows = []
    for frame in (0, 1):
        for k, x in enumerate((50.0, 300.0)):
            r = {
                "frame": frame,
                "FaceRectX": x + frame,
                "FaceRectY": 40.0,
                "FaceRectWidth": 100.0,
                "FaceRectHeight": 120.0,
                "FaceScore": 0.99,
                "Pitch": 1.0,
                "Roll": 2.0,
                "Yaw": 3.0 * (k + 1),
            }
            r.update({f"x_{i}": x + i for i in range(68)})
            r.update({f"y_{i}": 40.0 + i for i in range(68)})
            r.update(
                {
                    "AU01": 0.1,
                    "AU06": 0.8 if k == 0 else 0.0,
                    "AU12": 0.9 if k == 0 else 0.05,
                    "AU43": 0.0,
                }
            )
            rows.append(r)
    rows.append({"frame": 2, "FaceRectX": np.nan})  # py-feat's row for a frame without a face
    return pd.DataFrame(rows)


def test_fex_to_frames():
    frames = fex_to_frames(_fex(), sizes={0: (640, 360)})
    assert [len(f.faces) for f in frames] == [2, 2, 0]
    f = frames[0].faces[0]
    assert f.bbox == (50.0, 40.0, 150.0, 160.0)
    assert f.landmark_scheme == "dlib68" and f.landmarks.shape == (68, 2)
    assert f.aus["AU6"] == 0.8 and f.aus["AU12"] == 0.9 and "AU06" not in f.aus
    assert f.head_pose == (3.0, 1.0, 2.0) and f.au_source == "py-feat"
    assert frames[0].size == (640, 360)
    tr = FaceTracker()
    ids = [[x.track_id for x in tr.update(fr).faces] for fr in frames]
    assert ids == [[1, 2], [1, 2], []]


@pytest.mark.network
def test_real_pyfeat_detector(astronaut_png):
    """Needs py-feat (extra `pyfeat`) and its hub weights: run with -m network on a machine
    that reaches the hub."""
    pytest.importorskip("feat", reason="py-feat is not installed (extra pyfeat)")
    from PIL import Image

    from sovtp.annotate.pyfeat import detect

    img = np.asarray(Image.open(astronaut_png).convert("RGB"))
    (fa,) = detect([img])
    assert len(fa.faces) == 1 and fa.faces[0].aus["AU12"] > 0.5


def test_require_weights_names_the_folder(tmp_path, monkeypatch):
    from sovtp.annotate.pyfeat import require_weights
    from sovtp.errors import SovtpError

    missing = tmp_path / "nowhere"
    with pytest.raises(SovtpError, match=str(missing)):
        require_weights(missing)
    empty = tmp_path / "feat"
    empty.mkdir()
    (empty / "README.txt").write_text("weights go here")
    with pytest.raises(SovtpError, match="no py-feat model weights"):
        require_weights(empty)
    monkeypatch.setenv("SOVTP_PYFEAT_DIR", str(empty))
    with pytest.raises(SovtpError, match=str(empty)):
        require_weights()  # the env folder is the default
    (empty / "sub").mkdir()
    (empty / "sub" / "xgb_au_classifier.pkl").write_bytes(b"\0")
    assert require_weights() == empty


def test_swap_aus_puts_pyfeat_aus_on_matching_faces():
    from sovtp.annotate.pyfeat import swap_aus
    from sovtp.types import Face, FrameAnnotation

    mp = FrameAnnotation(
        0,
        0.0,
        (640, 360),
        [
            Face(
                1,
                (52.0, 40.0, 150.0, 160.0),
                aus={"AU6": 0.2, "AU45": 0.1},
                au_sides={"AU6": (0.2, 0.1)},
                au_methods={"AU6": "geometry", "AU45": "blendshape"},
            ),
            Face(2, (500.0, 40.0, 600.0, 160.0), aus={"AU6": 0.3}, au_methods={"AU6": "geometry"}),
        ],
    )
    pf = fex_to_frames(_fex())[:1]
    assert swap_aus([mp], pf) == 1
    a, b = mp.faces
    assert a.aus["AU6"] == 0.8 and a.au_methods["AU6"] == "pyfeat" and "AU6" not in a.au_sides
    assert a.aus["AU45"] == 0.1 and a.au_methods["AU45"] == "blendshape"  # py-feat lacks it
    assert a.au_methods["AU12"] == "pyfeat"
    assert b.aus == {"AU6": 0.3} and b.au_methods == {"AU6": "geometry"}  # no match: untouched
    # a hand over the mouth hides the mouth from py-feat too: its AU12 is not taken
    c = Face(
        3,
        (52.0, 40.0, 150.0, 160.0),
        occlusion={"mouth": "hand"},
        au_unmeasured={"AU12": "mouth covered by a hand", "AU6": "head turned 20°"},
    )
    assert swap_aus([FrameAnnotation(0, 0.0, (640, 360), [c])], pf) == 1
    assert "AU12" not in c.aus and c.au_unmeasured["AU12"] == "mouth covered by a hand"
    assert c.aus["AU6"] == 0.8 and "AU6" not in c.au_unmeasured  # py-feat measured it
