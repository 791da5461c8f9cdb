"""The one prepare pipeline: media → annotate → (de-identify) → render → prompt → Query.

``sovtp query``, ``sovtp prompt``, the bench runner and the ablations all build their queries
here and nowhere else, so a stage that must always run (de-identification, next) is enforced in
one place, and the protocol knobs (output contract, label order, transcript on/off, subject,
frame choice) mean the same thing in every command.

Two steps, because a benchmark annotates a sample once and asks many prompt variants and
systems about it: :meth:`Preparer.annotate` (cached on disk by content hash) and
:meth:`Preparer.query` (pure: annotation + spec → Query and its images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sovtp.closeable import Closeable
from sovtp.deid.policy import DEFAULT_MODE
from sovtp.deid.voice import DEFAULT_ALPHA, format_alpha
from sovtp.errors import DeidError
from sovtp.labels import LABEL_ORDERS, LabelSet, load_label_set, ordered_labels
from sovtp.media.sampling import Sampling
from sovtp.prompting.build import EncodedImage, ImageCache, ImageOptions, build_query
from sovtp.prompting.spec import PromptSpec
from sovtp.records import Query
from sovtp.types import ClipAnnotation, Frame

if TYPE_CHECKING:
    from sovtp.data.sample import Sample

AU_SOURCES = ("mediapipe", "pyfeat")


def later(default: Any, **kw: Any) -> Any:
    """A knob added after runs were made: at ``default`` it is left out of a run's identity
    (``sovtp.engine.config.run_identity``), so a run folder made before it still resumes."""
    return Field(default, json_schema_extra={"later": True}, **kw)


BLUR_WHOM = ("all", "others")  # whose faces --deid obscures


class PrepareSettings(BaseModel):
    """Every knob of the prepare pipeline, each declared once with its default: what decides
    what a model is shown, beside the prompt spec itself.  A run's config
    (:class:`~sovtp.engine.config.BenchConfig`) embeds it, ``sovtp query``/``prompt``/``bench``/
    ``ablate`` take each field as an option (``sovtp.cli.options.PREPARE_KNOBS``), and the
    prepare pipeline reads it (:class:`PrepareOptions`).  A new knob is a field here and an
    option line there; one added after runs were made is declared with :func:`later` so older
    run folders (whose identity never had it) still resume while it is at its default."""

    model_config = ConfigDict(frozen=True)

    sampling: str = "uniform:8"
    max_faces: int = Field(6, ge=1, le=64)  # whole frame
    pose: bool = True
    annotation_cache: bool = True
    au_source: str = "mediapipe"  # mediapipe | pyfeat
    output: str | None = None  # the spec's output contract unless given (staged|text|json|label)
    label_order: str = "fixed"  # fixed | shuffled (seeded per sample) | reversed
    seed: int = 0  # the one seed of a run: label shuffling, α draws (a run's sample shuffling)
    transcript: bool = True  # word the sample's transcript (when it has one)
    image_size: int = Field(
        768, ge=16
    )  # longest side of each image sent, px (marks are sized for it)
    jpeg_quality: int = Field(85, ge=1, le=100)
    # de-identification (DEEMO-style): measured on raw pixels, only obscured faces leave
    deid: bool = False
    blur: str = "all"  # all | others (bystanders only; the subject's face kept)
    deid_mode: str = DEFAULT_MODE  # blur | pixelate | fill (sovtp.deid.policy.MODES)
    asr: bool = False  # transcribe the audio (faster-whisper) where a sample has no transcript
    hands: bool = False  # MediaPipe hands: self-touch, fidgeting (NFBL cues)
    # McAdams coefficient of any audio sent (always anonymised): "0.75", or a range "LO-HI"
    # drawn per utterance from the seed and the sample key; kept in parse_alpha's one spelling
    # (0.75, "0.750" and [0.5, 0.9] are read too), parsed by :attr:`PrepareOptions.alpha`
    voice_alpha: str = format_alpha(DEFAULT_ALPHA)
    # a cap on the long side of every image sent, px, below image_size (None: no cap beyond it)
    max_side: int | None = later(None, ge=16)

    @field_validator("sampling")
    @classmethod
    def _sampling(cls, v: str) -> str:
        """Parsed now, so a bad ``--sampling`` is one line before any work, not an error row per
        sample (every command that prepares media embeds these settings)."""
        Sampling.parse(v)  # a ValueError: named with every other refused setting
        return v

    @field_validator("label_order", "au_source", "blur")
    @classmethod
    def _one_of(cls, v: str, info) -> str:
        what, choices = {
            "label_order": ("label order", LABEL_ORDERS),
            "au_source": ("AU source", AU_SOURCES),
            "blur": ("--blur", BLUR_WHOM),
        }[info.field_name]
        if v not in choices:
            raise ValueError(f"{what} must be one of {', '.join(choices)}; got {v!r}")
        return v

    @field_validator("output")
    @classmethod
    def _output(cls, v: str | None) -> str | None:
        if v is not None:
            from sovtp.contracts import check_output

            check_output(v)
        return v

    @field_validator("deid_mode")
    @classmethod
    def _deid_mode(cls, v: str) -> str:
        """One of :data:`sovtp.deid.policy.MODES`, refused when built (not at the first sample)."""
        from sovtp.deid.policy import check_mode

        return check_mode(v, "deid_mode")

    @field_validator("voice_alpha", mode="before")
    @classmethod
    def _voice_alpha(cls, v: Any) -> str:
        """``0.6`` (a YAML float), ``"0.5-0.9"`` or ``[0.5, 0.9]`` → one spelling; refused now
        (not at the first audio prompt) when it is no α."""
        from sovtp.deid.voice import parse_alpha

        try:
            text = format_alpha(tuple(v)) if isinstance(v, list | tuple) else str(v)
            return format_alpha(parse_alpha(text))
        except (TypeError, ValueError) as e:
            raise ValueError(f"voice_alpha: {e}") from None

    def settings(self) -> dict[str, Any]:
        """The knobs' values (a run config's share of them)."""
        return {k: getattr(self, k) for k in PrepareSettings.model_fields}


class PrepareOptions(PrepareSettings):
    """The prepare pipeline's options: the knobs and where to record what leaves.  Recorded in a run's config and manifest (``as_dict``)."""

    # where to record what leaves (sovtp.deid.outgoing): every image/audio payload of a request
    # that passes the guard, and an index line per request (refusals too); None: not recorded
    outgoing: Path | None = None

    @property
    def image(self) -> ImageOptions:
        """How images are encoded: the longest side (``image_size``, capped by ``max_side``)
        and the JPEG quality."""
        side = self.image_size if self.max_side is None else min(self.image_size, self.max_side)
        return ImageOptions(side, self.jpeg_quality)

    @property
    def alpha(self) -> float | tuple[float, float]:
        """``voice_alpha`` parsed: an α, or the (low, high) range to draw one from."""
        from sovtp.deid.voice import parse_alpha

        return parse_alpha(self.voice_alpha)

    def replace(self, **changes: Any) -> PrepareOptions:
        """A copy with ``changes``, validated like a new one."""
        return type(self)(**{**dict(self), **changes})

    def as_dict(self) -> dict[str, Any]:
        d = self.model_dump()
        d["outgoing"] = None if self.outgoing is None else str(self.outgoing)
        return d


class Preparer(Closeable):
    """Turns media into queries.  Holds the open detector (MediaPipe graphs are costly to open),
    so one Preparer serves a whole run; close it (or use ``with``)."""

    def __init__(self, options: PrepareOptions | None = None, detector=None):
        self.options = options or PrepareOptions()
        if self.options.deid and self.options.blur not in ("all", "others"):
            raise ValueError(f"--blur must be all or others, not {self.options.blur!r}")
        if self.options.au_source == "pyfeat":  # fail before any work, naming the folder
            from sovtp.annotate.pyfeat import require_weights

            require_weights()
        self._detector = detector
        self._own_detector = False
        self._finder = None
        # the last clip's raw audio: (samples, rate, the file it came from — for the audit)
        self._audio: dict[str, tuple] = {}
        self._recorder = None
        self._heard: dict[str, str] = {}  # the last clip's ASR transcript (--asr)

    # -- detector lifetime ------------------------------------------------------------------
    @property
    def detector(self):
        if self._detector is None:
            from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

            o = self.options
            self._detector = MediaPipeAnnotator(
                DetectorConfig(max_faces=o.max_faces, pose=o.pose, hands=o.hands)
            )
            self._detector.__enter__()
            self._own_detector = True
        return self._detector

    @property
    def finder(self):
        """The de-identification face finder (MediaPipe + CenterFace), opened on first use."""
        if self._finder is None:
            from sovtp.deid.faces import FaceFinder

            self._finder = FaceFinder()
        return self._finder

    @property
    def recorder(self):
        """The :class:`~sovtp.deid.outgoing.OutgoingRecorder` of ``options.outgoing`` (or None)."""
        if self._recorder is None and self.options.outgoing is not None:
            from sovtp.deid.outgoing import OutgoingRecorder

            self._recorder = OutgoingRecorder(self.options.outgoing)
        return self._recorder

    def close(self) -> None:
        if self._own_detector and self._detector is not None:
            self._detector.close()
        self._detector = None
        if self._finder is not None:
            self._finder.close()
            self._finder = None

    # -- stage 1: media → annotation ------------------------------------------------------
    def annotate(
        self,
        media: str | Path,
        sampling: str | None = None,
        *,
        frames: list[Frame] | None = None,
        progress: Callable[[int], None] | None = None,
        audio: str | Path | None = None,
        sample: Sample | None = None,
        root: Path | None = None,
    ) -> tuple[ClipAnnotation, list[Frame]]:
        """Decode the sampled frames and annotate them (raw pixels; cached by content hash);
        measure the voice's prosody on the raw audio (``audio``, else the media's own track)
        as ``audio`` cues; word a manifest sample's physiological recording (its ``physio``
        column, windowed to the clip; relative paths under ``root``) as ``physio`` cues."""
        from sovtp.annotate.pipeline import annotate

        clip, frames = annotate(
            media,
            sampling or self.options.sampling,
            detector=self.detector,
            cache=self.options.annotation_cache,
            frames=frames,
            progress=progress,
        )
        if self.options.au_source == "pyfeat":
            _pyfeat_aus(clip, frames)
        self._audio, self._heard = {}, {}
        raw = _raw_audio(audio or media)
        if raw is not None:
            self._audio[clip.sha256] = (*raw, str(audio or media))
            if self.options.asr:  # on the raw audio, on this machine; words, never the voice
                from sovtp.deid.words import transcribe

                self._heard[clip.sha256] = transcribe(*raw).text
            if not any(c.kind == "audio" for c in clip.cues):
                from sovtp.deid.prosody import prosody_cues

                clip.cues = [*clip.cues, *prosody_cues(*raw)]
        physio = sample is not None and (sample.meta or {}).get("physio")
        if physio and not any(c.kind == "physio" for c in clip.cues):
            from sovtp.physio.cues import physio_cues_for

            clip.cues = [*clip.cues, *physio_cues_for(sample, root=root)]
        return clip, frames

    # -- stage 2: annotation → (de-identify) → render → prompt → Query ------------------
    def query(
        self,
        clip: ClipAnnotation,
        frames: list[Frame],
        spec: PromptSpec,
        *,
        labels: LabelSet | str | list[str] | None = None,
        subject: str | int | None = "largest",
        transcript: str | None = None,
        sample_key: str = "",
        query_id: str | None = None,
        max_images: int | None = None,
        image_cache: ImageCache | None = None,
        names: tuple[str, ...] = (),
        record: bool = True,
    ) -> tuple[Query, list[EncodedImage]]:
        """The Query for one (clip, spec, subject), with the run's protocol knobs applied.
        ``names``: people's names known for the sample (a manifest's ``speaker``), scrubbed from
        the transcript under ``deid``.  ``record=False`` builds it for the report only (a text-only
        system's gallery picture): nothing is recorded as sent; de-identification still applies."""
        o = self.options
        if transcript is None and o.asr:
            transcript = self._heard.get(clip.sha256) or None
        spec = spec.with_output(o.output)
        ls = load_label_set(labels or spec.label_set)
        shown = ordered_labels(ls.labels, o.label_order, o.seed, sample_key or clip.sha256)
        if o.deid:  # the one place de-identification happens: after measuring, before drawing
            from sovtp.deid.stage import deid_visual, deidentify_for_prompt
            from sovtp.deid.words import scrub
            from sovtp.prompting.build import choose_subject

            if transcript:
                transcript = scrub(transcript, names)[0]
            subject = choose_subject(clip, subject)
            frames = deidentify_for_prompt(
                clip, frames, subject, o.blur, o.deid_mode, finder=self.finder
            )
            spec = replace(spec, visual=deid_visual(spec.visual))
        q, images = build_query(
            clip,
            frames,
            spec,
            labels=shown,
            subject=subject,
            transcript=transcript if o.transcript else None,
            transcript_scrubbed=o.deid,
            faces_hidden=o.deid,
            image_options=o.image,
            image_cache=image_cache,
            query_id=query_id,
            max_images=max_images,
        )
        q.meta["label_set"] = ls.name
        q.meta["label_order"] = o.label_order
        if spec.audio and clip.sha256 in self._audio:
            samples, rate, _ = self._audio[clip.sha256]
            _attach_audio(q, samples, rate, seed=o.seed, key=sample_key, alpha=o.alpha)
        sent = transcript if o.transcript else None
        if o.deid:
            try:
                _guard(q, images, clip, o.blur, self.finder, mode=o.deid_mode)
            except DeidError as e:
                if record:
                    self._record(q, clip, sample_key, sent, refused=str(e))
                raise
        if record:
            self._record(q, clip, sample_key, sent)
        return q, images

    def _record(
        self,
        q: Query,
        clip: ClipAnnotation,
        sample_key: str,
        transcript: str | None,
        refused: str | None = None,
    ) -> None:
        """Write what this request sends (or why it was refused) to ``options.outgoing``."""
        if self.recorder is None:
            return
        sent_audio = "audio" in q.meta  # set by _attach_audio with the part it attached
        self.recorder.record(
            q,
            sample_id=sample_key or clip.sha256,
            source=clip.source,
            raw_audio=self._audio[clip.sha256][2] if sent_audio else None,
            transcript=transcript or None,
            deid=self.options.deid,
            refused=refused,
        )


def _raw_audio(path: str | Path) -> tuple | None:
    """(samples, rate) of a file's audio track at 16 kHz, or None when it has none."""
    from sovtp.errors import MediaError
    from sovtp.media.audio import load_audio

    try:
        samples, rate = load_audio(path, 16000)
    except MediaError:
        return None
    return (samples, rate) if len(samples) else None


def _attach_audio(
    q: Query,
    samples,
    rate: int,
    seed: int,
    key: str,
    alpha: float | tuple[float, float] = DEFAULT_ALPHA,
) -> None:
    """An ``input_audio`` part for omni models: always the McAdams-anonymised voice, never the
    raw one (the part builder refuses raw samples).  ``alpha``: the coefficient, or a range to
    draw this utterance's from (``seed`` + ``key``); the meta records the α used (and the range)."""
    from sovtp.deid.parts import input_audio_part
    from sovtp.deid.voice import anonymise

    anon = anonymise(samples, rate, alpha=alpha, seed=seed, key=key)
    part, used = input_audio_part(anon), anon.alpha
    content = q.messages[-1]["content"]
    content.insert(len(content) - 1, part)  # before the text, after the images
    q.meta["audio"] = {"anonymised": True, "mcadams_alpha": used}
    if isinstance(alpha, tuple):
        q.meta["audio"]["mcadams_range"] = list(alpha)


def _decoded(jpeg: bytes):
    """The image exactly as the server will see it (JPEG artefacts included)."""
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def _guard(
    q: Query,
    images: list[EncodedImage],
    clip: ClipAnnotation,
    blur: str,
    finder,
    mode: str = "blur",
) -> None:
    """The last look before a de-identified request leaves: a face either detector still finds
    in an outgoing image stops the request (a :class:`DeidError`, an error row in a run).  Under
    ``--blur others`` the subject's own face, scaled to the image as sent, may show.  The query's
    meta records whose faces were obscured, how (``mode``), and how many images were checked."""
    from sovtp.deid.stage import assert_no_faces

    allowed = None
    if blur == "others" and q.subject is not None:
        by_index = {fa.index: fa for fa in clip.frames}
        allowed = []
        for im in images:
            fa = by_index.get(im.ref.frame_index) if im.ref.frame_index is not None else None
            face = fa.face(q.subject) if fa is not None else None
            if face is None:
                allowed.append([])
                continue
            sx, sy = im.ref.width / fa.size[0], im.ref.height / fa.size[1]
            x0, y0, x1, y1 = face.bbox
            allowed.append([(x0 * sx, y0 * sy, x1 * sx, y1 * sy)])
    by_frame = {fa.index: fa for fa in clip.frames}  # hands/torsos are checked against these
    anns = [by_frame.get(im.ref.frame_index) for im in images]
    problems = assert_no_faces(
        [_decoded(im.jpeg) for im in images], allowed=allowed, finder=finder, annotations=anns
    )
    if problems:
        raise DeidError("; ".join(problems))
    q.meta["deid"] = {"faces": blur, "mode": mode, "checked": len(images)}


def _pyfeat_aus(clip: ClipAnnotation, frames: list[Frame]) -> None:
    """Calibrated AUs from py-feat replace the measured ones on the faces it also finds (each
    AU keeps its method: ``pyfeat``); the cues are worded again from them."""
    from sovtp.annotate.cues import clip_cues
    from sovtp.annotate.pyfeat import detect, swap_aus

    swap_aus(clip.frames, detect([f.image for f in frames]))
    clip.detectors["aus"] = clip.detectors.get("aus", "") + " + py-feat"
    clip.cues = clip_cues(clip)


def prepare(
    media: str | Path,
    spec: PromptSpec,
    options: PrepareOptions | None = None,
    **query_kw: Any,
) -> tuple[Query, list[EncodedImage], ClipAnnotation, list[Frame]]:
    """One clip, one spec: the Query (and its images, annotation and frames)."""
    with Preparer(options) as p:
        clip, frames = p.annotate(media)
        q, images = p.query(clip, frames, spec, **query_kw)
    return q, images, clip, frames
