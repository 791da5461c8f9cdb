"""Faces de-identification on real faces (skimage's astronaut, public domain), media built here.

Each check uses detectors the way an auditor would: after de-identification MediaPipe's face
detector, MediaPipe's FaceLandmarker and CenterFace must find nothing, in every frame — including
the frames where the face enters and leaves the picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sovtp.media.sample import astronaut
from sovtp.types import Face, Frame, FrameAnnotation

pytest.importorskip("onnxruntime")


def _head(w: int = 125, h: int = 130) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut()[0:260, 100:350]).resize((w, h)))


def pan_clip(n: int = 20, size: int = 256) -> list[np.ndarray]:
    """The astronaut's head crossing a grey frame: off the left edge in frame 0, entering,
    across, leaving, off the right edge in the last frame."""
    head = _head()
    hw = head.shape[1]
    out = []
    for k in range(n):
        c = np.full((size, size, 3), 60, np.uint8)
        x = int(-hw + k * (size + hw) / (n - 1))
        xs, xe = max(0, x), min(size, x + hw)
        if xe > xs:
            c[60 : 60 + head.shape[0], xs:xe] = head[:, xs - x : xe - x]
        out.append(c)
    return out


def two_faces() -> np.ndarray:
    """A subject (large, left) and a bystander (smaller, right) on one 384×256 still."""
    c = np.full((256, 384, 3), 60, np.uint8)
    big, small = _head(150, 156), _head(100, 104)
    c[40:196, 20:170] = big
    c[60:164, 250:350] = small[:, ::-1]
    return c


@pytest.fixture(scope="module")
def finder():
    from sovtp.deid.faces import FaceFinder

    with FaceFinder() as f:
        yield f


@pytest.fixture(scope="module")
def landmarker():
    from sovtp.deid.audit import _Landmarker

    lm = _Landmarker()
    yield lm
    lm.close()


def _faces(finder, landmarker, img) -> list[str]:
    return [d.source for d in finder.find(img)] + ["landmarker"] * len(landmarker(img))


def test_centerface_graph_is_made_dynamic_and_finds_the_face(finder):
    img = astronaut()
    boxes = finder.cf(img)
    assert len(boxes) == 1
    x0, y0, x1, y1, score = boxes[0]
    # the astronaut's face sits around x 180–270, y 60–180 in the 512×512 image
    assert 150 < (x0 + x1) / 2 < 260 and 80 < (y0 + y1) / 2 < 160 and score > 0.8
    # the same net at another size: only possible once the fixed 32×32 dims are symbolic
    assert len(finder.cf(img[::2, ::2].copy())) == 1


@pytest.mark.parametrize("mode", ["blur", "pixelate", "fill"])
def test_still_has_no_detectable_face_after_deid(finder, landmarker, mode):
    from sovtp.deid.faces import deidentify_frames

    img = astronaut()
    assert _faces(finder, landmarker, img)  # the detectors do see the raw face
    out = deidentify_frames([Frame(0, 0.0, img)], None, mode, finder=finder)[0].image
    assert _faces(finder, landmarker, out) == []
    # only the face changed: the bottom half of the image is untouched
    assert np.array_equal(out[300:], img[300:])


def test_fill_paints_the_region_one_grey_and_spares_kept_faces():
    """``fill`` leaves nothing of the face: the obscured box is one grey, the same for every
    face (not its mean, which keeps the skin tone); a kept region inside it and everything
    outside stay as they were."""
    from sovtp.deid.faces import FILL_GREY, obscure
    from sovtp.deid.tracks import Region

    img = astronaut()
    box, keep = (150.0, 40.0, 300.0, 220.0), (260.0, 150.0, 300.0, 220.0)
    out = obscure(img, [Region(box, 1), Region(keep, 2, kept=True)], "fill")
    patch = out[40:150, 150:260].reshape(-1, 3)
    assert (patch == FILL_GREY).all()
    assert np.array_equal(out[150:220, 260:300], img[150:220, 260:300])
    outside = np.ones(img.shape[:2], bool)
    outside[40:220, 150:300] = False
    assert np.array_equal(out[outside], img[outside])
    with pytest.raises(ValueError):
        obscure(img, [Region(box, 1)], "smudge")


def test_a_face_the_recheck_finds_is_filled_too_not_blurred(finder):
    """Under ``fill`` the re-check's catch is filled like the rest: no region of the output
    keeps any shading of the face (it used to be blurred harder)."""
    from sovtp.deid.faces import FILL_GREY, obscure_checked

    img = astronaut()
    out, _ = obscure_checked(img, [], "fill", finder)  # no tracks: only the re-check finds it
    changed = (out != img).any(-1)
    assert changed.sum() > 5000  # the face was found and covered
    assert (out[changed] == FILL_GREY).all()


def test_clip_face_entering_and_leaving_is_covered_in_every_frame(finder, landmarker):
    from sovtp.deid.faces import deidentify_frames

    clip = pan_clip()
    frames = [Frame(i, i / 10, c) for i, c in enumerate(clip)]
    regions: list = []
    out = deidentify_frames(frames, None, "blur", finder=finder, report=regions)
    detected = [bool(finder.find(c)) for c in clip]
    assert not detected[1] and not detected[-2]  # the half faces at the edges go unseen...
    leaks = {i: _faces(finder, landmarker, o.image) for i, o in enumerate(out)}
    assert all(v == [] for v in leaks.values()), leaks
    # ...and are covered by the track's box carried to them (bridged, not detected)
    for i, c in enumerate(clip):
        visible = (c != 60).any(axis=2)
        if visible.any() and not detected[i]:
            assert regions[i] and all(r.bridged for r in regions[i]), i
            assert not np.array_equal(out[i].image, c), i


def test_without_bridging_edge_frames_stay_raw(finder):
    """The guard on the bridge: with bridge=0 the edge frames come out untouched."""
    from sovtp.deid.faces import deidentify_frames

    clip = pan_clip()
    detected = [bool(finder.find(c)) for c in clip]
    frames = [Frame(i, i / 10, c) for i, c in enumerate(clip)]
    out = deidentify_frames(frames, None, "blur", finder=finder, bridge=0)
    edge = next(i for i, c in enumerate(clip) if (c != 60).any() and not detected[i])
    assert np.array_equal(out[edge].image, clip[edge])


def test_others_keeps_the_subject_and_blurs_the_bystander(finder, landmarker):
    from sovtp.deid.faces import deidentify_frames
    from sovtp.deid.tracks import merge

    img = two_faces()
    dets = sorted(merge(finder.find(img)), key=lambda d: d.box[0])
    assert len(dets) == 2
    ann = FrameAnnotation(
        0, 0.0, (384, 256), [Face(1, dets[0].box), Face(2, dets[1].box)]
    )  # subject 1 (left), bystander 2 (right)
    out = deidentify_frames([Frame(0, 0.0, img)], [ann], "blur", keep={1}, finder=finder)[0]
    left = [d for d in finder.find(out.image) if d.box[2] < 200]
    right = [d for d in finder.find(out.image) if d.box[0] > 200]
    assert left and not right
    assert np.array_equal(out.image[:, :180], img[:, :180])
    assert landmarker(out.image[:, 200:].copy()) == []
    every = deidentify_frames([Frame(0, 0.0, img)], [ann], "blur", finder=finder)[0]
    assert _faces(finder, landmarker, every.image) == []


def test_stage_and_guard(finder):
    from sovtp.deid.stage import assert_no_faces, deid_visual, deidentify_for_prompt
    from sovtp.render.marks import VisualSpec
    from sovtp.types import ClipAnnotation

    img = two_faces()
    problems = assert_no_faces([img], finder=finder)
    assert len(problems) >= 2 and all("not sent" in p for p in problems)
    clip = ClipAnnotation("x", "0", "all", [FrameAnnotation(0, 0.0, (384, 256))])
    out = deidentify_for_prompt(clip, [Frame(0, 0.0, img)], None, finder=finder)
    assert assert_no_faces([out[0].image], finder=finder) == []
    assert deid_visual(VisualSpec(landmarks="all")).landmarks == "none"


@pytest.mark.slow  # loads dlib's ResNet and FaceLandmarker: ~4 s on an idle 2-core machine
def test_audit_reports_no_faces_and_no_reidentification(finder):
    pytest.importorskip("dlib")
    from sovtp.deid.audit import audit_images, markdown, reidentification
    from sovtp.deid.faces import deidentify_frames

    raw = [astronaut()]
    deid = [deidentify_frames([Frame(0, 0.0, raw[0])], None, finder=finder)[0].image]
    s = audit_images(raw, deid)
    assert s["faces_detectable"] == 0 and s["passed"]
    assert s["reid"]["faces"] == 1 and s["reid"]["reidentified"] == 0
    assert s["reid"]["min_distance"] > s["reid"]["threshold"]
    assert "pass" in markdown(s)
    # the embedder does recognise the same person (a JPEG-degraded copy), and the audit fails
    # on raw images
    import io

    buf = io.BytesIO()
    Image.fromarray(raw[0]).save(buf, format="JPEG", quality=25)
    same = reidentification(raw, [np.asarray(Image.open(buf).convert("RGB"))])
    assert same["reidentified"] == 1
    assert not audit_images(raw, raw)["passed"]


@pytest.mark.slow
def test_deid_media_video_and_image(tmp_path, finder, landmarker):
    from sovtp.deid.media import deid_media
    from sovtp.media.sample import write_video
    from sovtp.media.video import load_frames

    src = write_video(tmp_path / "pan.mp4", pan_clip(), fps=10)
    info = deid_media(src, tmp_path / "out.mp4")
    assert info["video_frames"] == 20 and info["regions_obscured"] > 0
    frames = load_frames(tmp_path / "out.mp4", "all")
    assert len(frames) == 20
    assert all(_faces(finder, landmarker, f.image) == [] for f in frames)
    Image.fromarray(astronaut()).save(tmp_path / "a.png")
    info = deid_media(tmp_path / "a.png", tmp_path / "b.png", mode="pixelate")
    out = np.asarray(Image.open(tmp_path / "b.png"))
    assert info["regions_obscured"] >= 1 and _faces(finder, landmarker, out) == []
    # the face's oval only (the re-check may pixelate it harder, inside it): 6.3 % of the frame
    assert (np.abs(out[..., :3].astype(int) - astronaut()).max(-1) > 8).mean() < 0.10


# -- the fast stream on H.264 (what `sovtp deid` writes) ------------------------------------------
ENTER_N, ENTER_SIZE = 30, (320, 180)


@pytest.fixture(scope="module")
def entering_mp4(tmp_path_factory):
    """A short H.264 clip: the astronaut's head enters from the left, moves, grows, leaves."""
    from sovtp.deid.clips import entering_clip
    from sovtp.media.sample import write_video

    frames = entering_clip(ENTER_N, ENTER_SIZE)
    path = write_video(tmp_path_factory.mktemp("enter") / "enter.mp4", frames, fps=25)
    return path, frames


@pytest.fixture(scope="module")
def entering_out(entering_mp4, tmp_path_factory):
    """``deid_media`` on that clip, decoded back: the frames that would leave the machine."""
    from sovtp.deid.media import deid_media
    from sovtp.media.video import load_frames

    src, _ = entering_mp4
    dst = tmp_path_factory.mktemp("enter_out") / "out.mp4"
    info = deid_media(src, dst, voice=False)
    return info, [f.image for f in load_frames(dst, "all")]


def test_stream_output_has_no_detectable_face_in_any_decoded_frame(
    finder, entering_mp4, entering_out
):
    """Every decoded output frame: MediaPipe (whole frame + tiles) and CenterFace find nothing,
    though they do find the face in the raw clip (so the check can fail)."""
    _, raw = entering_mp4
    info, out = entering_out
    assert len(out) == ENTER_N == info["video_frames"]
    assert sum(bool(finder.find(r)) for r in raw) >= ENTER_N // 2
    left = {i: [(d.source, round(d.score, 2)) for d in finder.find(o)] for i, o in enumerate(out)}
    assert {i: v for i, v in left.items() if v} == {}


def test_stream_changes_every_visible_face_including_entering_and_leaving(
    finder, entering_mp4, entering_out
):
    """The face's known box changed in every frame that shows any of it — the frames where it
    enters and leaves included, which no detector sees (the tracks carry the box there)."""
    from sovtp.deid.clips import entering_faces

    _, raw = entering_mp4
    _, out = entering_out
    boxes = entering_faces(ENTER_N, ENTER_SIZE)
    edge = [i for i, b in enumerate(boxes) if b is not None and not finder.find(raw[i])]
    assert edge, "the clip should have frames with a face no detector sees"
    unchanged = []
    for i, b in enumerate(boxes):
        if b is None:
            continue
        x0, y0, x1, y1 = b
        # obscured: ~55 grey levels on average; H.264 alone (twice): 3–8
        if np.abs(out[i][y0:y1, x0:x1].astype(int) - raw[i][y0:y1, x0:x1]).mean() < 20:
            unchanged.append(i)
    assert unchanged == []


def test_stream_workers_give_the_same_frames_in_order(entering_mp4):
    """Two workers scan and verify different frames at once; the frames still leave in input
    order, obscured exactly as one worker does it (the tracks are linked in frame order); the
    ``--blur others`` plan is the same too."""
    from sovtp.deid.faces import FaceFinder, deidentify_stream, plan_detections

    _, raw = entering_mp4
    with FaceFinder() as f:
        plan = plan_detections(raw, f, centerface_every=3, workers=2)
        assert plan == plan_detections(raw, f, centerface_every=3, workers=1)
        assert plan[0] is not None and len(plan[1]) == ENTER_N
        one = list(deidentify_stream(raw, finder=f, centerface_every=3, workers=1))
        stats: dict = {}
        two = list(deidentify_stream(raw, finder=f, centerface_every=3, workers=2, stats=stats))
        assert len(f._strict_all) <= 2  # one strict MediaPipe detector per concurrent worker
    assert len(one) == len(two) == ENTER_N and stats["regions"] > 0
    assert [
        i for i, (a, b) in enumerate(zip(one, two, strict=True)) if not np.array_equal(a, b)
    ] == []


def test_finder_lends_each_concurrent_caller_its_own_strict_detector(finder):
    """MediaPipe runs one detector's calls one at a time: two threads looking at once need two
    detectors, and a finished caller's detector is lent again rather than a new one opened."""
    with finder._strict() as a, finder._strict() as b:
        assert a is not b
    n = len(finder._strict_all)
    with finder._strict() as c:
        assert c in (a, b)
    assert len(finder._strict_all) == n


@pytest.mark.parametrize("mode", ["blur", "pixelate"])
def test_recheck_obscures_what_the_detectors_still_see(finder, mode):
    """A blurred face box over the astronaut's collar still reads as a face to MediaPipe (a
    tight box: frame 54 of the panning clip); the re-check finds it and blurs it away."""
    from sovtp.deid.faces import obscure, obscure_checked
    from sovtp.deid.tracks import Region, dilate, merge
    from sovtp.media.sample import panning_clip

    img = panning_clip(3.0, 25)[54]
    h, w = img.shape[:2]
    regs = [Region(dilate(d.box, 0.1, w, h), 1) for d in merge(finder.find(img))]
    assert regs and finder.find(obscure(img, regs, mode))  # plain obscuring leaves a hit...
    out, regs2 = obscure_checked(img, regs, mode, finder, 2, local=True)
    assert finder.find(out) == [] and len(regs2) > len(regs)  # ...the re-check does not


def test_blur_others_detects_each_frame_once(entering_mp4, tmp_path, monkeypatch):
    """``blur="others"`` plans the subject and obscures from one detection pass (it used to
    detect every frame twice): full scans counted through ``FaceFinder.find``."""
    from sovtp.deid.faces import CENTERFACE_EVERY, FaceFinder
    from sovtp.deid.media import deid_media

    calls = []
    real = FaceFinder.find

    def counting(self, image, *a, **k):
        calls.append(1)
        return real(self, image, *a, **k)

    monkeypatch.setattr(FaceFinder, "find", counting)
    src, _ = entering_mp4
    info = deid_media(src, tmp_path / "o.mp4", blur="others", voice=False)
    assert info["video_frames"] == ENTER_N
    assert len(calls) == -(-ENTER_N // CENTERFACE_EVERY)


def _boxes_at_reference(seen: dict[int, tuple], pos: int, k: int):
    """The quadratic reading of one track that the linear index replaced — interpolate between
    detections up to 2k apart, else carry the nearest one within k — as (kind, box to cover)."""
    if pos in seen:
        return "seen", seen[pos]
    before = [p for p in seen if pos - 2 * k <= p < pos]
    after = [p for p in seen if pos < p <= pos + k]
    a, b = (max(before) if before else None), (min(after) if after else None)
    if a is not None and b is not None and b - a <= 2 * k:
        f = (pos - a) / (b - a)
        return "interp", tuple(np.array(seen[a]) + f * (np.array(seen[b]) - np.array(seen[a])))
    if a is not None and pos - a <= k:
        return "carry", seen[a]
    if b is not None:
        return "carry", seen[b]
    return None


def test_face_tracks_linear_index_matches_the_plain_reading():
    from sovtp.deid.faces import Detection
    from sovtp.deid.tracks import FaceTracks

    rng = np.random.default_rng(0)
    tr = FaceTracks(bridge=3)
    for p in range(300):
        # one face drifting right, detected in 40 % of the frames
        tr.add(p, [Detection((10.0 + p, 20.0, 60.0 + p, 80.0))] if rng.random() < 0.4 else [])
    assert len(tr.tracks) > 1  # gaps longer than 2k+1 start new tracks
    for pos in range(-5, 310):
        got = sorted(tr.boxes_at(pos, (1000, 1000)), key=lambda g: g[1])
        want = [
            (t.tid, w)
            for t in tr.tracks
            if (w := _boxes_at_reference({q: d.box for q, d in t.seen.items()}, pos, 3))
        ]
        assert [g[1] for g in got] == [w[0] for w in want], pos
        for (box, _tid, bridged), (_, (kind, ref)) in zip(got, want, strict=True):
            assert bridged == (kind != "seen"), pos
            if kind == "carry":  # held box unioned with its motion: covers the held box
                assert box[0] <= ref[0] and box[2] >= ref[2], pos
            else:
                assert np.allclose(box, ref), pos
