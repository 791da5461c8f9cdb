"""Prompt specs render to golden snapshots; user text stays data; queries are OpenAI-shaped."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sovtp.annotate.aus import blendshapes_to_aus
from sovtp.annotate.cues import clip_cues
from sovtp.errors import PromptError
from sovtp.labels import load_label_set
from sovtp.prompting.build import ImageCache, build_query, choose_subject
from sovtp.prompting.spec import PromptSpec, list_specs, load_spec, render_text
from sovtp.resources import prompts_dir
from sovtp.types import ClipAnnotation, Face, Frame, FrameAnnotation

GOLDEN = Path(__file__).parent / "golden"
TRANSCRIPT = "I told you {{ 7*7 }} times {% for x in range(3) %}no{% endfor %} — {{ config }}"


def _face(tid, x, bs):
    r = blendshapes_to_aus(bs)
    lm = np.stack([np.linspace(x, x + 80, 478), np.linspace(60, 160, 478)], axis=1).astype(
        np.float32
    )
    return Face(
        tid,
        (x, 60.0, x + 80.0, 160.0),
        landmarks=lm,
        blendshapes=bs,
        aus=r.aus,
        au_sides=r.sides,
        au_source="test",
        head_pose=(25.0 if tid == 1 else 0.0, 5.0, 0.0),
    )


def fixed_clip() -> tuple[ClipAnnotation, list[Frame]]:
    """Two people over 3 frames: 1 on the left (frowning, turned right), 2 on the right (smiling)."""
    frames, anns = [], []
    for k in range(3):
        frames.append(Frame(k * 10, k * 1.0, np.full((360, 640, 3), 90, np.uint8)))
        faces = [
            _face(
                1,
                100.0 + k,
                {
                    "browDownLeft": 0.7,
                    "browDownRight": 0.7,
                    "eyeSquintLeft": 0.6,
                    "eyeSquintRight": 0.6,
                    "mouthRollLower": 0.7,
                    "mouthRollUpper": 0.6,
                },
            ),
            _face(
                2,
                460.0 - k,
                {
                    "mouthSmileLeft": 0.9,
                    "mouthSmileRight": 0.85,
                    "cheekSquintLeft": 0.6,
                    "cheekSquintRight": 0.55,
                },
            ),
        ]
        anns.append(FrameAnnotation(k * 10, k * 1.0, (640, 360), faces))
    clip = ClipAnnotation("clip.mp4", "ab" * 32, "uniform:3", anns)
    clip.cues = clip_cues(clip)
    return clip, frames


@pytest.mark.parametrize("spec_id", list_specs())
def test_every_prompt_matches_its_golden_snapshot(spec_id, request):
    clip, frames = fixed_clip()
    q, images = build_query(
        clip, frames, load_spec(spec_id), subject=1, transcript="Leave me alone."
    )
    text = q.text()
    path = GOLDEN / (spec_id.replace("/", "__") + ".txt")
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + "\n")
    assert path.exists(), f"no golden for {spec_id}: write it with --update-golden and review it"
    assert text + "\n" == path.read_text(), (
        f"{spec_id} changed; rerun with --update-golden if intended"
    )
    assert 1 <= len(images) <= load_spec(spec_id).max_images


def test_transcript_with_template_syntax_comes_out_verbatim():
    clip, frames = fixed_clip()
    for sid in ("sovtp/full", "ladder/context"):
        q, _ = build_query(clip, frames, load_spec(sid), subject=1, transcript=TRANSCRIPT)
        assert TRANSCRIPT in q.text()
        assert "49" not in q.text()


def test_sandbox_and_strict_undefined(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "evil.j2").write_text("{{ labels.__class__.__mro__ }}")
    (tmp_path / "templates" / "typo.j2").write_text("{{ lables }}")
    spec = PromptSpec(id="x", template="evil.j2")
    with pytest.raises(PromptError):
        render_text(spec, {"labels": []}, root=tmp_path)
    with pytest.raises(PromptError, match="lables"):
        render_text(PromptSpec(id="y", template="typo.j2"), {"labels": []}, root=tmp_path)


def test_query_is_openai_shaped_with_jpeg_data_urls_and_budget():
    clip, frames = fixed_clip()
    spec = load_spec("sovtp/full")
    q, images = build_query(clip, frames, spec, subject=2, labels="mafw11")
    system, user = q.messages
    assert system["role"] == "system" and user["role"] == "user"
    parts = user["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert im.format == "JPEG" and im.size == (640, 360)
    assert q.labels == load_label_set("mafw11").labels and "helplessness" in q.text()
    assert q.spec_hash == spec.hash and q.subject == 2
    assert "sha256:" in str(q.redacted()) and "base64" not in str(q.redacted())
    small = spec.__class__(**{**spec.__dict__, "max_images": 2})
    q2, imgs2 = build_query(clip, frames, small, subject=2)
    assert len(imgs2) == 2 and [i.ref.frame_index for i in imgs2] == [0, 20]


def test_variants_share_rendered_images():
    clip, frames = fixed_clip()
    cache = ImageCache()
    for sid in ("ladder/au_text", "ladder/landmarks", "ladder/context", "ladder/full"):
        build_query(clip, frames, load_spec(sid), subject=1, image_cache=cache)
    # au_text and landmarks draw the same marks; context and full draw the same marks
    assert cache.renders == 2


def test_subject_choice():
    clip, _ = fixed_clip()
    assert choose_subject(clip, 2) == 2
    assert choose_subject(clip, "central") in (1, 2)
    with pytest.raises(ValueError, match="no face with ID 7"):
        choose_subject(clip, 7)


def test_spec_hash_follows_template_and_fields(tmp_path):
    a = load_spec("ladder/plain")
    b = load_spec("ladder/bbox")
    assert a.hash != b.hash and len(a.hash) == 16
    with pytest.raises(PromptError, match="unknown prompt"):
        load_spec("ladder/nope")
    # an edited template (or one of the shared macros) changes the hash of every spec using it
    root = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), root)
    same = load_spec("sovtp/full", root)
    assert same.hash == load_spec("sovtp/full").hash
    tpl = root / "templates" / same.template
    tpl.write_text(tpl.read_text().replace("Stage 1", "Stage one"))
    assert load_spec("sovtp/full", root).hash != same.hash
    macros = root / "templates" / "_macros.j2"
    before = load_spec("ladder/plain", root).hash
    macros.write_text(macros.read_text() + "\n{# edited #}")
    assert load_spec("ladder/plain", root).hash != before
    # and so does the output contract
    assert same.with_output("text").hash != same.hash


def test_voice_and_physiology_cues_are_worded_in_the_body_stage():
    """Measurements from other sensors reach the prompt as words (stage 2), never as data."""
    from sovtp.types import Cue

    clip, frames = fixed_clip()
    clip.cues = [
        *clip.cues,
        Cue("audio", "pitch", "pitch high and varied (median 210 Hz)", None, 210.0, 1.0, "test"),
        Cue("physio", "heart_rate", "heart rate 92 bpm, rising", 1, 92.0, 1.0, "test"),
    ]
    text = build_query(clip, frames, load_spec("sovtp/full"), subject=1)[0].text()
    body = text[text.index("Stage 2") : text.index("Stage 3")]
    assert "Voice (measured on the audio): pitch high and varied" in body
    assert "Physiology (measured by sensors): heart rate 92 bpm, rising" in body


def test_hand_body_language_is_worded_for_the_subject_only():
    """NFBL cues (hands: self-touch, fidgeting) reach stage 2 for the subject, not for others."""
    from sovtp.types import Cue

    clip, frames = fixed_clip()
    clip.cues = [
        *clip.cues,
        Cue("nfbl", "self_touch_neck", "right hand touches the neck 0.3–0.6 s", 1, {}, 1.0, "t"),
        Cue("nfbl", "fidgeting", "fidgeting (hand motion high) 1.0–2.0 s", 2, {}, 1.0, "t"),
    ]
    text = build_query(clip, frames, load_spec("sovtp/full"), subject=1)[0].text()
    body = text[text.index("Stage 2") : text.index("Stage 3")]
    assert "right hand touches the neck 0.3–0.6 s" in body
    assert "fidgeting" not in text
