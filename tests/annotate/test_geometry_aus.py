"""AUs from landmark geometry on a real face (skimage's astronaut), where blendshapes are blind.

What is real here: the photo, MediaPipe's landmarks, depth and transform on it, and (for the moved
faces) exact moves of those real landmarks in the face's own frame.  Warped *pixels* of other
expressions are not used: the astronaut's broad smile survives any warp of her photo (teeth,
folds), so a warp test would measure the warp, not the geometry.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile

import numpy as np
import pytest

from sovtp.annotate import geometry as geo
from sovtp.annotate.aus import blendshapes_to_aus
from sovtp.annotate.pipeline import annotate
from sovtp.backends.facs import FacsBackend
from sovtp.records import Query
from sovtp.types import Face, FrameAnnotation


@pytest.fixture(scope="module")
def smile(astronaut_png_shared, detector):
    clip, _ = annotate(astronaut_png_shared, "uniform:1", detector=detector, cache=False)
    return clip


def _face(clip) -> Face:
    return clip.frames[0].faces[0]


def _reasoner_label(aus: dict[str, float], sides=None) -> str:
    q = Query(
        id="q",
        messages=[{"role": "user", "content": "?"}],
        meta={"facs": {"aus": aus, "sides": sides or {}}},
    )
    return json.loads(FacsBackend().answer(q).text)["label"]


def test_smile_au12_clearly_above_au10_and_au6_from_geometry(smile):
    face = _face(smile)
    # the measured blindness this module exists for
    assert face.blendshapes["cheekSquintLeft"] < 0.01 and face.blendshapes["noseSneerLeft"] < 0.01
    assert face.blendshapes["mouthUpperUpLeft"] > 0.3  # rises with the smile
    assert face.au_methods["AU6"] == face.au_methods["AU9"] == "geometry"
    assert face.au_methods["AU10"] == "geometry" and face.au_methods["AU12"] == "blendshape"
    assert face.aus["AU12"] > 0.8 and face.aus["AU10"] < 0.1, face.aus
    assert face.aus["AU12"] - face.aus["AU10"] > 0.6
    assert 0.1 < face.aus["AU6"] < 0.6, face.aus  # measured 0.23: her eyes take part
    assert face.aus["AU9"] < 0.1 and face.aus["AU15"] < 0.1
    assert face.geometry["AU12"] > 0.8  # geometric cross-check agrees with the blendshape
    assert face.geometry["reference_canonical"] == 1.0  # a still: canonical neutral
    mean = next(c for c in smile.cues if c.name == "active_aus").value["mean"]
    assert _reasoner_label(mean) == "happy"


def test_round_trip_keeps_geometry(smile):
    face = _face(smile)
    back = Face.from_dict(json.loads(json.dumps(face.to_dict())))
    assert back.geometry == pytest.approx(face.geometry, abs=1e-4)
    assert back.au_methods == face.au_methods


def test_blendshapes_never_claim_au6_au9_and_take_the_smile_out_of_au10():
    r = blendshapes_to_aus(
        {
            "cheekSquintLeft": 0.9,
            "noseSneerRight": 0.9,
            "mouthSmileLeft": 0.9,
            "mouthSmileRight": 0.9,
            "mouthUpperUpLeft": 0.47,
            "mouthUpperUpRight": 0.47,
        }
    )
    assert "AU6" not in r.aus and "AU9" not in r.aus  # not measured, not "0"
    assert r.aus["AU10"] == 0.0 and r.aus["AU12"] == 0.9
    assert r.aus["AU25"] == pytest.approx(0.8 * 0.47)  # lips still part with the raised lip
    lip_only = blendshapes_to_aus({"mouthUpperUpLeft": 0.6, "mouthUpperUpRight": 0.5})
    assert lip_only.aus["AU10"] == 0.6 and lip_only.sides["AU10"] == (0.6, 0.5)


def test_canonical_constants_match_the_landmarker_file():
    from sovtp import assets

    path = assets.locate("face_landmarker")
    if path is None:
        pytest.skip("face_landmarker.task not fetched")
    blob = zipfile.ZipFile(path).read("geometry_pipeline_metadata_landmarks.binarypb")
    mesh = dict(_fields(blob))[1]  # GeometryPipelineMetadata.canonical_mesh
    floats = [struct.unpack("<f", v)[0] for f, v in _fields(mesh) if f == 3]
    verts = np.array(floats).reshape(-1, 5)[:, :3]  # x, y, z, u, v per vertex
    assert verts.shape == (468, 3)
    for i, xyz in geo.CANONICAL.items():
        assert verts[i] == pytest.approx(xyz, abs=2e-3), i


def _fields(b: bytes):
    """Protobuf wire-format fields (field number, raw value) — enough for the mesh."""

    def varint(i: int) -> tuple[int, int]:
        r = s = 0
        while True:
            c = b[i]
            i += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, i

    i = 0
    while i < len(b):
        key, i = varint(i)
        kind = key & 7
        if kind == 0:
            v, i = varint(i)
        elif kind == 2:
            n, i = varint(i)
            v, i = b[i : i + n], i + n
        elif kind == 5:
            v, i = b[i : i + 4], i + 4
        else:
            v, i = b[i : i + 8], i + 8
        yield key >> 3, v


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def test_frontalising_undoes_head_rotation(smile):
    """Turn the real face's 3D landmarks by yaw 30°, pitch 15°, roll 45° (and its transform with
    them): the features must not move.  Without frontalising they do."""
    face = _face(smile)
    extra = _rot(30, 15, 45)
    pts = np.c_[face.landmarks[:, 0], -face.landmarks[:, 1], -face.depth] @ extra.T
    turned = dataclasses.replace(
        face,
        landmarks=np.c_[pts[:, 0], -pts[:, 1]],
        depth=-pts[:, 2],
        transform=np.r_[np.c_[extra @ face.transform[:3, :3], [0, 0, 0]], [[0, 0, 0, 1]]],
    )
    a = geo.face_features(geo.frontalise(face))
    b = geo.face_features(geo.frontalise(turned))
    assert max(abs(a[k] - b[k]) for k in a) < 1e-3
    unrotated = dataclasses.replace(turned, transform=face.transform)
    c = geo.face_features(geo.frontalise(unrotated))
    assert max(abs(a[k] - c[k]) for k in a) > 0.05


def test_real_photo_rolled_45_degrees_reads_the_same(astronaut_png, detector):
    from PIL import Image
    from skimage.transform import rotate

    img = np.asarray(Image.open(astronaut_png).convert("RGB"))[0:300, 100:350]
    tilted = (rotate(img, 45, resize=True, mode="edge") * 255).astype(np.uint8)
    fa = detector.detect(tilted)
    (face,) = fa.faces
    face.track_id = 1
    geo.apply_geometry([fa], still=True)
    assert abs(face.head_pose[2]) > 35  # really rolled
    assert face.aus["AU6"] > 0.1 and face.aus["AU10"] < 0.1 and face.aus["AU9"] < 0.1
    assert face.aus["AU12"] - face.aus["AU10"] > 0.6
    assert _reasoner_label(face.aus) == "happy"


def _iod_px(face: Face) -> float:
    lm = face.landmarks
    return float(np.linalg.norm((lm[33] + lm[133]) / 2 - (lm[263] + lm[362]) / 2))


def _moved(face: Face, moves: dict[int, float]) -> Face:
    """A copy of the face with landmarks raised (+) or lowered (−) by inter-ocular fractions.
    The astronaut's head is nearly upright (roll 3°), so image up is the face's up."""
    lm = face.landmarks.copy()
    for i, dy in moves.items():
        lm[i, 1] -= dy * _iod_px(face)
    return dataclasses.replace(
        face,
        landmarks=lm,
        aus=dict(face.aus),
        au_sides=dict(face.au_sides),
        au_methods=dict(face.au_methods),
        geometry={},
    )


NOSE_WINGS = (48, 64, 98, 278, 294, 327)
UPPER_LIP = (0, 37, 39, 267, 269)


def _neutral(f: Face) -> Face:
    f.aus = dict.fromkeys(f.aus, 0.0)  # blendshapes say: nothing expressive
    return f


def _against_own_neutral(base: Face, face: Face) -> Face:
    """Measure ``face`` in a 3-frame track whose other frames are ``base`` looking neutral: the
    reference is her own face, so only the move shows (not her morphology)."""
    frames = [
        FrameAnnotation(k, k / 10, (512, 512), [f])
        for k, f in enumerate([_neutral(_moved(base, {})), _neutral(_moved(base, {})), face])
    ]
    geo.apply_geometry(frames, still=False)
    assert face.geometry["reference_canonical"] == 0.0
    return face


@pytest.mark.parametrize(
    ("moves", "au", "quiet"),
    [
        (dict.fromkeys(NOSE_WINGS, 0.06), "AU9", ("AU10", "AU15")),  # nose wrinkler
        (dict.fromkeys(UPPER_LIP, 0.06), "AU10", ("AU9", "AU15")),  # upper lip raiser
        ({61: -0.10, 291: -0.10}, "AU15", ("AU9", "AU10")),  # lip corners down
        ({0: -0.03, 17: 0.03}, "AU24", ("AU9", "AU10")),  # lips pressed thin
    ],
)
def test_each_geometry_au_answers_its_own_movement(smile, moves, au, quiet):
    base = _face(smile)
    face = _against_own_neutral(base, _moved(base, moves))
    assert face.aus[au] > 0.3, (au, face.aus[au])
    for q in quiet:
        assert face.aus[q] < 0.1, (q, face.aus[q])
    assert face.au_methods[au] == "geometry"


def test_chin_raise_moves_the_au17_cross_check_not_the_reported_au17(smile):
    """The lip-to-chin distance answers a raised chin, but it is a cross-check only: a dropped jaw
    and a person's own chin move it too, so the reported AU17 is the blendshape's."""
    base = _face(smile)
    face = _against_own_neutral(base, _moved(base, {152: 0.08, 175: 0.06, 199: 0.05}))
    assert face.geometry["AU17"] > 0.3, face.geometry["AU17"]
    assert face.au_methods.get("AU17") != "geometry"
    assert face.aus.get("AU17", 0.0) == base.aus.get("AU17", 0.0)


def test_smile_lift_of_the_upper_lip_is_not_au10(smile):
    """Corners up by a smile's amount with the upper lip following half-way: AU10 stays quiet."""
    base = _face(smile)
    face = _against_own_neutral(
        base, _moved(base, {61: 0.08, 291: 0.08} | dict.fromkeys(UPPER_LIP, 0.03))
    )
    assert face.geometry["AU12"] > 0.4 and face.aus["AU10"] < 0.1, face.geometry  # up, not out
    lip = _against_own_neutral(base, _moved(base, dict.fromkeys(UPPER_LIP, 0.03)))
    assert lip.aus["AU10"] > 0.3  # the same lip lift without the corners is AU10


def test_video_track_uses_its_own_least_expressive_frames(smile):
    """Two neutral-looking frames and one with the nose wrinkled: the reference is the track's own
    face, so her morphology (which reads as a slight AU6 against the canonical face) cancels."""
    base = _face(smile)
    first = _neutral(_moved(base, {}))
    frames = [
        FrameAnnotation(k, k / 10, (512, 512), [f])
        for k, f in enumerate(
            [first, _neutral(_moved(base, {})), _moved(base, dict.fromkeys(NOSE_WINGS, 0.06))]
        )
    ]
    geo.apply_geometry(frames, still=False)
    wrinkled = frames[2].faces[0]
    assert first.geometry["reference_canonical"] == 0.0
    assert first.aus["AU6"] == 0.0 and first.aus["AU9"] == 0.0
    assert wrinkled.aus["AU9"] > 0.5
    # a track that never looks neutral (her smile in every frame) falls back to the canonical face
    smiling = [FrameAnnotation(k, k / 10, (512, 512), [_moved(base, {})]) for k in range(3)]
    geo.apply_geometry(smiling, still=False)
    assert smiling[0].faces[0].geometry["reference_canonical"] == 1.0
    assert smiling[0].faces[0].aus["AU6"] > 0.1


def test_faces_without_depth_or_transform_are_left_alone():
    face = Face(1, (0, 0, 10, 10), aus={"AU12": 0.5}, au_methods={"AU12": "blendshape"})
    geo.apply_geometry([FrameAnnotation(0, 0.0, (10, 10), [face])], still=True)
    assert face.aus == {"AU12": 0.5} and face.geometry == {}
