"""Output contracts: the schema order that lets a constrained model reason first, the request
each mode sends, and a parser that reads only what the contract asked for."""

from __future__ import annotations

import json

import pytest

from sovtp.backends import GenerationConfig, get_backend
from sovtp.contracts import OUTPUTS, STAGE_KEYS, constraint
from sovtp.prompting.build import build_query
from sovtp.prompting.spec import load_spec
from sovtp.scoring.parse import parse_answer
from tests.prompting.test_prompts import fixed_clip

LABELS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def _query(output: str):
    clip, frames = fixed_clip()
    spec = load_spec("sovtp/full").with_output(output)
    return build_query(clip, frames, spec, subject=1, query_id=f"q-{output}")[0]


def test_staged_schema_puts_every_stage_before_the_label():
    kind, schema = constraint("staged", LABELS)
    keys = list(schema["properties"])
    assert kind == "json"
    # constrained decoders emit properties in schema order: the stages must come first
    assert keys == [*STAGE_KEYS, "label", "confidence"]
    assert schema["required"] == keys and schema["properties"]["label"]["enum"] == LABELS
    assert all("maxLength" not in schema["properties"][k] for k in STAGE_KEYS)
    assert list(constraint("json", LABELS)[1]["properties"])[0] == "label"
    assert constraint("label", LABELS) == ("choice", LABELS)
    assert constraint("text", LABELS) is None


def test_sovtp_full_is_staged_and_its_words_describe_the_stages():
    q = _query("staged")
    assert load_spec("sovtp/full").output == "staged" and q.output == "staged"
    text = q.text()
    assert '"scene"' in text and '"self_correction"' in text and "one or two sentences" not in text
    t = _query("text").text()
    assert "Final answer: <label>" in t and '"scene"' not in t


@pytest.mark.parametrize("server", ["vllm", "openai"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_request_body_of_every_mode(server, output):
    be = get_backend("openai", base_url="http://127.0.0.1:9/v1", model="m", server=server)
    q = _query(output)
    body = be.request_body(q, GenerationConfig())
    sent = body.get("structured_outputs") or body.get("response_format")
    assert "guided_json" not in body and "guided_choice" not in body  # retired in vLLM
    if output == "text":
        assert sent is None  # free reasoning is never constrained
    elif server == "vllm" and output == "label":
        assert body["structured_outputs"] == {"choice": q.labels}
    elif server == "vllm":
        assert (
            list(body["structured_outputs"]["json"]["properties"])[-2:]
            == [
                "label",
                "confidence",
            ]
            or output == "json"
        )
    elif output == "label":
        assert sent is None  # OpenAI's response_format has no choice; the words carry it
    else:
        schema = body["response_format"]["json_schema"]["schema"]
        first = list(schema["properties"])[0]
        assert first == ("scene" if output == "staged" else "label")
    # --no-structured: words only, for servers that reject or ignore constraints
    plain = be.request_body(q, GenerationConfig(structured=False))
    assert "structured_outputs" not in plain and "response_format" not in plain
    json.dumps(body)  # the body is plain JSON


def test_text_contract_reads_only_the_last_final_answer_line():
    text = "At first this looks happy.\nThe brows are lowered though.\nFinal answer: angry"
    p = parse_answer(text, LABELS, output="text")
    assert (p.label, p.parse_status) == ("angry", "ok")
    assert p.rationale.startswith("At first") and "Final answer" not in p.rationale
    drafts = "Final answer: happy\nOn reflection, no.\n**Final answer:** sad."
    assert parse_answer(drafts, LABELS, output="text").label == "sad"
    # a label mentioned in passing is not an answer under this contract
    for bad in ("She looks happy to me.", "Final answer: happy or sad", '{"label": "happy"}'):
        p = parse_answer(bad, LABELS, output="text")
        assert p.label is None and p.parse_status == "invalid", bad


def test_staged_contract_keeps_the_stages_as_the_rationale():
    obj = {
        "scene": "An office; a meeting has just ended.",
        "body": "Arms crossed, leaning back.",
        "others": "Person 2 smiles.",
        "action_units": "AU4 and AU23 are active; AU12 absent.",
        "self_correction": "The smile of person 2 is not the subject's; the brows win.",
        "label": "angry",
        "confidence": 0.7,
    }
    p = parse_answer(json.dumps(obj), LABELS, output="staged")
    assert (p.label, p.parse_status, p.confidence) == ("angry", "ok", 0.7)
    assert list(p.stages) == list(STAGE_KEYS)
    assert p.rationale.index("Scene:") < p.rationale.index("Self-correction:")
    assert "brows win" in p.rationale
    # the label without the stages: answered, but not as asked (never "ok")
    bare = parse_answer('{"label": "angry", "confidence": 0.6}', LABELS, output="staged")
    assert (bare.label, bare.parse_status, bare.stages) == ("angry", "repaired", {})
    # prose without the JSON the contract asked for is invalid, not guessed
    assert parse_answer("I would say angry.", LABELS, output="staged").label is None
    fenced = "Here you go:\n```json\n" + json.dumps(obj) + "\n```"
    assert parse_answer(fenced, LABELS, output="staged").parse_status == "repaired"


def test_label_contract_and_shuffled_labels_keep_synonyms():
    from sovtp.labels import load_label_set, ordered_labels

    assert parse_answer("Sad", LABELS, output="label").parse_status == "ok"
    assert parse_answer("I think it is sad", LABELS, output="label").label is None
    shuffled = ordered_labels(LABELS, "shuffled", seed=3, key="clip-1")
    assert sorted(shuffled) == sorted(LABELS) and shuffled != LABELS
    assert shuffled == ordered_labels(LABELS, "shuffled", seed=3, key="clip-1")
    assert shuffled != ordered_labels(LABELS, "shuffled", seed=3, key="clip-2")
    assert ordered_labels(LABELS, "reversed", 0, "x") == LABELS[::-1]
    # a shuffled shipped set is still that set: its synonyms parse
    ls = load_label_set(shuffled)
    assert ls.name == "basic7" and ls.normalize("joyful") == "happy"


@pytest.mark.parametrize("output", OUTPUTS)
def test_offline_reasoner_answers_in_every_contract(output):
    """The FACS reasoner writes what each contract asks for, so the parser (which reads only
    the contract) gets a valid answer from it in every mode."""
    from sovtp.scoring.parse import predict

    q = _query(output)
    be = get_backend("facs")
    (r,) = be.generate([q], GenerationConfig())
    p = predict(r, q.labels, "s", "facs", q.spec_id, output=q.output)
    assert p.label == "angry" and p.parse_status == "ok", (output, r.text)
    if output == "staged":
        assert list(json.loads(r.text))[:5] == list(STAGE_KEYS) and "action_units" in p.stages
    if output == "text":
        assert r.text.splitlines()[-1] == "Final answer: angry"


def test_unmeasured_aus_are_not_evidence_of_absence():
    from sovtp.facs import read_expression

    # AU6 not measured: a strong AU12 must still read as happiness, nearly as strongly as a
    # Duchenne smile with AU6 measured present; measured absent AU6 lowers it
    no_au6 = read_expression({"AU12": 0.9}).scores["happiness"]
    au6_absent = read_expression({"AU12": 0.9, "AU6": 0.0}).scores["happiness"]
    duchenne = read_expression({"AU12": 0.9, "AU6": 0.8}).scores["happiness"]
    assert duchenne > no_au6 > au6_absent
    assert no_au6 > 0.7
