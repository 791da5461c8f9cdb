"""``sovtp deid`` (de-identified copy of a video, image or audio file) and ``sovtp audit`` (the
faces privacy audit of a folder, a run or a file)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated

import typer

from sovtp.cli.options import VOICE_ALPHA, alpha_option
from sovtp.errors import SovtpError

DeidMode = Annotated[
    str,
    typer.Option(
        "--mode",
        help="How faces are obscured: blur (default) | pixelate | fill (each face box one grey, "
        "the same for every face: nothing of the face is left).",
    ),
]
BlurWho = Annotated[
    str,
    typer.Option(
        "--blur",
        help="Whose faces: all (default) | others (bystanders only; the subject's face kept).",
    ),
]


def deid_cmd(
    media: Annotated[Path, typer.Argument(help="A video, an image or an audio file.", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The de-identified file to write.")],
    mode: DeidMode = "blur",
    blur: BlurWho = "all",
    voice: Annotated[
        bool,
        typer.Option("--voice/--keep-voice", help="McAdams-anonymise the audio (default on)."),
    ] = True,
    alpha: Annotated[
        str,
        typer.Option(
            "--alpha",
            callback=alpha_option,
            help="McAdams coefficient (pole angles θ → θ**α); lower hides the voice more and "
            "costs more words. 0.75 by default; VoicePrivacy B2 used 0.8. A range LO-HI such as "
            "0.5-0.9 (VoicePrivacy 2022) draws one α in it — from --seed and the file's bytes "
            "(reproducible, so keep the seed private), or without --seed from OS entropy; the "
            "α used is printed. Above 0.9 is refused (the voice would leave nearly as it is), "
            "above 0.8 warned about. Measured on real speech, 0.5-0.9 hid fewer voices than "
            "0.75 (5 of 9 vs 9 of 9).",
        ),
    ] = VOICE_ALPHA,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the α drawn from an --alpha range (else unused); without it the α "
            "comes from OS entropy and no one can recompute it.",
        ),
    ] = None,
    centerface_every: Annotated[
        int,
        typer.Option(
            "--centerface-every",
            help="Full scans (CenterFace + MediaPipe) every N-th frame; tracks carry faces "
            "between them and every written frame is re-checked by MediaPipe. 1: every frame.",
        ),
    ] = 3,
) -> None:
    """Write a de-identified copy: every face blurred, the voice anonymised, nothing else kept."""
    from sovtp.deid.media import deid_media
    from sovtp.deid.voice import parse_alpha

    if out.is_dir():
        out = out / media.name
    a = parse_alpha(alpha)  # checked by the option's callback
    info = deid_media(
        media, out, mode, blur, voice=voice, alpha=a, seed=seed, centerface_every=centerface_every
    )
    print(json.dumps({"out": str(out), **info}, default=str))


def audit_cmd(
    target: Annotated[
        Path,
        typer.Argument(
            help="De-identified media: a file (video, image or audio), a folder of images/videos, "
            "or a run folder.",
            exists=True,
        ),
    ],
    raw: Annotated[
        Path | None,
        typer.Option(
            "--raw",
            help="The raw file the target was made from: adds face re-identification and, where "
            "both have audio, speaker re-identification.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for audit_faces.json / .md and audit_voice.json."),
    ] = None,
    max_frames: Annotated[
        int, typer.Option("--max-frames", help="Frames checked per video (0: all).")
    ] = 0,
    speaker_threshold: Annotated[
        float,
        typer.Option(
            "--speaker-threshold",
            help="Same-speaker cosine threshold of the speaker encoder (Resemblyzer); the target "
            "passes when raw→anonymised similarity is below it.",
        ),
    ] = 0.80,
    words: Annotated[
        bool,
        typer.Option(
            "--words", help="Also transcribe both (see --words-asr) and report the WER rise."
        ),
    ] = False,
    words_asr: Annotated[
        str | None,
        typer.Option(
            "--words-asr",
            help="The listener of --words (and implies it): Whisper 'base' (default; the "
            "stronger ASR, nearer what an omni model hears) or 'tiny.en' (faster, and more "
            "easily thrown by the formant shift: +21 WER points on real speech at α 0.75 where "
            "base loses 8.5).",
        ),
    ] = None,
    reid: Annotated[
        bool,
        typer.Option(
            "--reid",
            help="Run/query folders: also face re-identification (dlib) of each sent image "
            "against its raw frame, where the raw media is reachable.",
        ),
    ] = False,
    speaker: Annotated[
        bool,
        typer.Option(
            "--speaker/--no-speaker",
            help="Run/query folders: speaker similarity (Resemblyzer) of sent audio vs raw.",
        ),
    ] = True,
) -> None:
    """Privacy audit.  A run or query folder that recorded what it sent (``outgoing/``,
    ``request.json``): exactly those payloads — faces still detectable, (--reid) face
    re-identification, the sent audio against the raw voice, PII left in the transcripts —
    written to ``privacy.json``.  Other media: faces still detectable by three detectors and,
    with --raw, face re-identification; with --raw audio, speaker re-identification raw vs
    anonymised (and, with --words, the ASR word error rate it costs).  Exits 1 when it fails."""
    import json

    from sovtp.deid.audit_run import is_sent_folder
    from sovtp.deid.media_writer import AUDIO_FORMATS
    from sovtp.deid.words import ASR_MODELS

    words = words or words_asr is not None
    words_asr = words_asr or "base"
    if words and words_asr not in ASR_MODELS:  # before any model is loaded
        raise typer.BadParameter(f"--words-asr must be one of {', '.join(ASR_MODELS)}")

    if raw is None and is_sent_folder(target):
        from sovtp.deid.audit_run import table
        from sovtp.recipes.audit import audit_run_folder

        report, path, html = audit_run_folder(
            target, out, reid=reid, speaker=speaker, speaker_threshold=speaker_threshold
        )
        print(table(report))
        print(f"wrote {path}")
        if html is not None:
            print(f"updated {html}")
        if report["verdict"] != "pass":
            raise typer.Exit(1)
        return
    passed = True
    audio_only = target.is_file() and target.suffix.lower() in AUDIO_FORMATS
    if not audio_only:
        from sovtp.deid.audit import audit_stream, iter_collect, iter_media, markdown, write_audit

        items = ((n, img, None) for n, img in iter_collect(target, max_frames))
        if raw is not None:
            items = _aligned(iter_media(raw, max_frames), iter_collect(target, max_frames))
        summary = audit_stream(items, reid=raw is not None)
        if summary["images"] == 0:  # an audit that checked nothing cannot pass
            summary["passed"] = False
            summary["reasons"] = [f"nothing to check: no image or video frame in {target}"]
        if out is not None:
            write_audit(summary, out)
        print(markdown(summary), end="")
        passed = bool(summary["passed"])
    if raw is not None and target.is_file():
        voice = _voice_audit(raw, target, speaker_threshold, words_asr if words else None)
        if voice is not None:
            print(
                f"\n# Privacy audit — voice\n\n- speaker similarity raw → target: "
                f"**{voice['similarity']:.3f}** (same-speaker threshold {speaker_threshold}) — "
                f"{'PASS' if voice['similarity'] < speaker_threshold else 'FAIL'}"
            )
            if "words" in voice:
                w = voice["words"]
                ok = w["passed"]
                print(
                    f"- ASR WER raw {w['wer_raw']:.3f} → target {w['wer_anon']:.3f} "
                    f"(+{w['rise_points']:.1f} points; target ≤ 10) — "
                    f"{'PASS' if ok else 'FAIL'}"
                )
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / "audit_voice.json").write_text(json.dumps(voice, indent=1))
            passed = passed and voice["passed"]
    if not passed:
        raise typer.Exit(1)


def _aligned(raw, target):
    """``(name, target image, raw image)`` pairs, one at a time; a length mismatch is an error."""
    for pair in itertools.zip_longest(raw, target):
        if None in pair:
            raise typer.BadParameter("--raw and the target have different frame counts")
        (_, r), (name, img) = pair
        yield name, img, r


def _voice_audit(raw: Path, target: Path, threshold: float, asr: str | None) -> dict | None:
    """Speaker re-identification of one raw/anonymised pair (None when either has no audio);
    with ``asr`` (a Whisper model name) also the word error rate the anonymisation cost."""
    import numpy as np

    from sovtp.errors import MediaError
    from sovtp.media.audio import load_audio

    try:
        x, rate = load_audio(raw, 16000)
        y, _ = load_audio(target, 16000)
    except MediaError:
        return None
    try:
        from sovtp.deid.audit_voice import SpeakerEncoder, words_audit
    except ImportError as e:  # pragma: no cover - the extra
        raise SovtpError(f"the voice audit needs the audit extra ({e})") from e
    enc = SpeakerEncoder()
    sim = float(np.dot(enc.embed(x, rate), enc.embed(y, rate)))
    out: dict = {"similarity": round(sim, 4), "threshold": threshold, "passed": sim < threshold}
    if asr:
        from sovtp.deid.words import transcribe

        w = words_audit([(x, rate)], [y], transcribe=lambda a, r: transcribe(a, r, model=asr).text)
        out["words"] = {**w.to_dict(), "asr": asr}
        out["passed"] = out["passed"] and w.passed
    return out
