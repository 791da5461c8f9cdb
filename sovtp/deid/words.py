"""Words: speech → timed transcript (faster-whisper) → scrubbed transcript.

Why scrub with rules and a name list rather than an NER model: the rules are auditable, run
offline in microseconds, and a study usually *knows* the names that matter (the manifest's
``speaker`` column, the interviewer); what is scrubbed is replaced by a typed placeholder
(``[NAME]``, ``[EMAIL]``, ``[PHONE]``, ``[ADDRESS]``, ``[NUMBER]``, ``[URL]``) so the model still
reads that *something* was said there.  Scrubbing is conservative toward privacy: a capitalised
word after "I'm" is taken for a name even when it is not.

The ASR model resolves through :mod:`sovtp.assets` (``whisper_tiny_en``: explicit path or
``SOVTP_MODELS_DIR``, the user cache, the hub, the sha256-pinned copy in a PyPI wheel).  ``model``
names one of :data:`ASR_MODELS` — ``"tiny.en"`` (the default: 39 M parameters, fastest) or
``"base"`` (74 M, multilingual; its two-wheel copy is fetched on first use) — or a folder holding
any CTranslate2 Whisper model.  The words audit should be read with ``base`` too: tiny.en is the
weakest Whisper, and a formant shift costs it more words than it costs a real system.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ASR_RATE = 16000
DEFAULT_ASR_MODEL = "whisper_tiny_en"
# ``transcribe(model=...)`` names → resolver assets (sovtp.assets.ASSETS)
ASR_MODELS = {"tiny.en": "whisper_tiny_en", "base": "whisper_base"}


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    probability: float = 1.0
    start_frame: int | None = None  # frame indices at the clip's fps (see align_to_frames)
    end_frame: int | None = None


@dataclass
class Transcript:
    text: str
    words: list[Word] = field(default_factory=list)
    language: str = "en"
    model: str = ""

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "language": self.language,
            "model": self.model,
            "words": [w.__dict__ for w in self.words],
        }


@dataclass(frozen=True)
class Redaction:
    """One scrubbed span: its kind and where it was in the *original* text (no PII kept)."""

    kind: str  # NAME | EMAIL | PHONE | ADDRESS | NUMBER | URL
    start: int
    end: int

    @property
    def placeholder(self) -> str:
        return f"[{self.kind}]"


# ---------------------------------------------------------------- ASR


_MODELS: dict[tuple[str, int], object] = {}


def load_asr(model: str | Path | None = None, cpu_threads: int = 2):
    """A faster-whisper ``WhisperModel`` on CPU (int8), cached per model path and thread count.

    ``model`` is a name in :data:`ASR_MODELS` (``"tiny.en"``, ``"base"``; resolved and
    sha256-checked), a folder holding a CTranslate2 Whisper model, or None for ``tiny.en``.
    A name wins over a folder of the same name in the working directory.
    """
    from faster_whisper import WhisperModel

    from sovtp import assets

    # keyed by what the caller asked for: a named model is resolved (its folder sha256-checked,
    # 75-150 MB read) once per process, not once per clip
    key = (None if model is None else str(model), cpu_threads)
    if key not in _MODELS:
        if model is None or str(model) in ASR_MODELS:
            path = assets.resolve(ASR_MODELS.get(str(model), DEFAULT_ASR_MODEL))
        else:
            path = Path(model)
        _MODELS[key] = WhisperModel(
            str(path), device="cpu", compute_type="int8", cpu_threads=cpu_threads
        )
    return _MODELS[key]


def transcribe(
    samples: np.ndarray,
    rate: int,
    model: str | Path | None = None,
    fps: float | None = None,
    n_frames: int | None = None,
    language: str | None = "en",
    beam_size: int = 1,
) -> Transcript:
    """Transcribe mono ``samples`` with word timestamps (aligned to frames when ``fps`` is given).

    ``model``: ``"tiny.en"`` (default), ``"base"`` or a model folder (see :func:`load_asr`).

    Greedy decoding (``beam_size=1``) by default: on CPU it is ~2× faster than beam 5 and the
    transcript is evidence, not a deliverable.  faster-whisper's VAD filter is off so that no
    ONNX model is needed beyond the Whisper folder.  Temperature 0 only: faster-whisper's default
    falls back to *sampling* at rising temperatures when a segment looks poor, so the same audio
    gave different words from run to run (the raw WER of one benchmark corpus moved by a point) —
    a transcript that enters prompts and the words audit must be reproducible.
    """
    from sovtp.media.audio import resample

    asr = load_asr(model)
    x = resample(np.asarray(samples, dtype=np.float32), rate, ASR_RATE)
    segments, info = asr.transcribe(
        x,
        language=language,
        beam_size=beam_size,
        word_timestamps=True,
        vad_filter=False,
        condition_on_previous_text=False,
        temperature=0.0,
    )
    words: list[Word] = []
    texts: list[str] = []
    for seg in segments:
        texts.append(seg.text.strip())
        for w in seg.words or []:
            words.append(Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)))
    tr = Transcript(" ".join(t for t in texts if t), words, info.language, str(model or "tiny.en"))
    if fps:
        tr.words = align_to_frames(tr.words, fps, n_frames)
    return tr


def align_to_frames(words: list[Word], fps: float, n_frames: int | None = None) -> list[Word]:
    """Attach the frame indices (at ``fps``) during which each word is spoken.

    A word spans the frames whose display interval [i/fps, (i+1)/fps) it overlaps; indices are
    clipped to ``n_frames`` when known, so a word cannot point past the clip's last frame.
    """
    out = []
    for w in words:
        a = int(np.floor(w.start_s * fps + 1e-9))
        b = max(a, int(np.ceil(w.end_s * fps - 1e-9)) - 1)
        if n_frames is not None:
            a, b = min(max(a, 0), n_frames - 1), min(max(b, 0), n_frames - 1)
        out.append(Word(w.text, w.start_s, w.end_s, w.probability, a, b))
    return out


# ---------------------------------------------------------------- scrubbing

_DIGIT_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Square|Sq|Close|Crescent|Parkway|Highway|Hwy)"
)
_NUM_WORD = r"(?:\d{1,5}[A-Za-z]?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|\w+ty(?:[- ]\w+)?)"
_TITLE = r"(?:Mr|Mrs|Ms|Mx|Dr|Prof|Miss|Sir|Madam)\.?"
_CAP = r"[A-Z][a-zA-Z'\-]+"  # an ASCII capitalised word (addresses)
# a name word in any script (José, Zoë, Łukasz, Ødegaard); whether it must be capitalised is
# decided after matching (see find_pii): Python's re has no Unicode upper-case class
_WORD = r"[^\W\d_][^\W\d_'\-]*(?:['\-][^\W\d_]+)*"
# words that follow "I'm" / "this is" capitalised at a sentence start yet name no one
_NOT_NAMES = {
    "Not",
    "So",
    "Sorry",
    "Fine",
    "Good",
    "Here",
    "There",
    "The",
    "A",
    "An",
    "It",
    "Just",
    "Really",
    "Very",
    "Going",
    "Happy",
    "Sad",
    "Angry",
    "Okay",
    "OK",
    "Ok",
    "Glad",
    "Afraid",
    "Sure",
    "What",
    "Why",
    "How",
    "That",
    "This",
    "Great",
    "Done",
    "Tired",
    "Well",
    "From",
    "In",
    "At",
    "On",
    "All",
    "Also",
    "Still",
    "Always",
    "Never",
    "Your",
    "My",
    "Our",
    "Their",
    "His",
    "Her",
    "Because",
    "And",
    "But",
    "Or",
    "If",
    "When",
    "Where",
    "Who",
    "Getting",
    "Trying",
}

# (kind, pattern, group holding the PII or 0); earlier kinds win where spans overlap
_RULES: list[tuple[str, re.Pattern[str], int]] = [
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.I), 0),
    (
        "EMAIL",
        re.compile(
            r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|\b[\w.+-]+ at [\w-]+(?: dot [a-z]{2,6})+\b", re.I
        ),
        0,
    ),
    (
        "URL",
        re.compile(
            r"\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|edu|gov|co\.uk|info|ai)\b(?:/\S*)?", re.I
        ),
        0,
    ),
    (
        "PHONE",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}(?!\w)"
        ),
        0,
    ),
    (
        "ADDRESS",
        re.compile(
            rf"\b{_NUM_WORD}\s+(?:{_CAP}\s+){{1,3}}{_STREET}\b\.?(?:,?\s+(?:Apt|Apartment|Suite|Unit|Flat)\.?\s*\w+)?"
        ),
        0,
    ),
    # IDs: a token of letters/digits (joined by - or /) with ≥ 5 digits, or ≥ 3 digits and a
    # letter (AB-99812, X7Y-339-2Q); a year or a count stays (see _is_id)
    ("NUMBER", re.compile(r"(?<![\w@.])[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)*(?![\w@])"), 0),
    ("NUMBER", re.compile(rf"\b{_DIGIT_WORDS}(?:[\s,-]+{_DIGIT_WORDS}){{3,}}\b", re.I), 0),
    ("NAME", re.compile(rf"\b{_TITLE}\s+({_WORD}(?:\s+{_WORD})?)"), 1),
    # "my name is mary": a name however it is written (the phrase says it is one)
    (
        "NAME",
        re.compile(rf"\b(?:my name is|my name's|name's)\s+({_WORD}(?:\s+{_WORD})?)", re.I),
        1,
    ),
    # "I'm Renée", "this is Łukasz": only a capitalised word (else "I'm tired" is a name)
    (
        "NAME",
        re.compile(
            rf"\b(?:[Ii]'?m|I am|[Tt]his is|[Cc]all me|[Ii]t's|[Ss]peaking with)\s+"
            rf"({_WORD}(?:\s+{_WORD})?)"
        ),
        1,
    ),
]
_STRONG_NAME = _RULES[-2][1]
# identifying numbers read as phone numbers before: SSNs, card numbers, IP addresses
_RULES.insert(
    3,
    (
        "NUMBER",
        re.compile(
            r"(?<![\w.-])(?:\d{3}-\d{2}-\d{4}|(?:\d{4}[ -]){3}\d{4}|\d{1,3}(?:\.\d{1,3}){3})(?![\w-])"
        ),
        0,
    ),
)


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def _is_id(token: str) -> bool:
    d = _digits(token)
    letters = sum(ch.isalpha() for ch in token)
    return d >= 5 or (d >= 3 and letters >= 1 and len(token) >= 5)


def _name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """Each given name as a whole, and each part of ≥ 3 letters as a capitalised word."""
    pats: list[re.Pattern[str]] = []
    seen: set[str] = set()
    for full in names:
        full = (full or "").strip()
        if not full:
            continue
        for part in [full, *full.split()]:
            part = part.strip(".,")
            if part in seen or (part != full and len(part) < 3):
                continue
            seen.add(part)
            flags = re.I  # "i am alice": spoken words come in any case
            pats.append(re.compile(rf"(?<!\w){re.escape(part)}(?:'s)?(?!\w)", flags))
    # longest first, so "Jane Doe" is taken as one span before "Jane"
    pats.sort(key=lambda p: -len(p.pattern))
    return pats


def find_pii(text: str, names: Iterable[str] = ()) -> list[Redaction]:
    """Non-overlapping PII spans in ``text``, in order (given names first, then the rules)."""
    spans: list[Redaction] = []

    def free(a: int, b: int) -> bool:
        return all(b <= r.start or a >= r.end for r in spans)

    for pat in _name_patterns(names):
        for m in pat.finditer(text):
            if free(m.start(), m.end()):
                spans.append(Redaction("NAME", m.start(), m.end()))
    for kind, pat, group in _RULES:
        for m in pat.finditer(text):
            a, b = m.span(group)
            s = text[a:b]
            if kind == "PHONE" and _digits(s) < 7:
                continue
            if kind == "NUMBER" and pat.pattern.startswith("(?<![") and not _is_id(s):
                continue
            if kind == "NAME":
                words = s.split()
                first = words[0]
                if first in _NOT_NAMES or s.startswith("["):
                    continue
                if first.lower() in {"i", "the"}:
                    continue
                if pat is not _STRONG_NAME and not first[0].isupper():
                    continue  # "I'm tired": a name after a weak phrase is capitalised
                if len(words) > 1 and not words[1][0].isupper():
                    b = a + len(first)  # "mary and": the name is the first word only
                # "this is Paris" style false hits are accepted: privacy first
            if free(a, b):
                spans.append(Redaction(kind, a, b))
    return sorted(spans, key=lambda r: r.start)


def scrub(text: str, names: Iterable[str] = ()) -> tuple[str, list[Redaction]]:
    """Replace names, emails, phones, addresses, long numbers and URLs with typed placeholders.

    ``names`` are known identities (a manifest's ``speaker`` column, the interviewer): each is
    matched case-insensitively as a whole and by its parts (≥ 3 letters, capitalised).  Returns
    the scrubbed text and the redactions (kinds and original offsets; the PII itself is not kept).
    """
    found = find_pii(text, names)
    out, pos = [], 0
    for r in found:
        out.append(text[pos : r.start])
        out.append(r.placeholder)
        pos = r.end
    out.append(text[pos:])
    return "".join(out), found


def scrub_transcript(tr: Transcript, names: Iterable[str] = ()) -> Transcript:
    """A copy of ``tr`` whose text and words are scrubbed (a redacted word keeps its timing)."""
    names = list(names)
    text, _ = scrub(tr.text, names)
    words = []
    for w in tr.words:
        t, _ = scrub(w.text, names)
        words.append(Word(t, w.start_s, w.end_s, w.probability, w.start_frame, w.end_frame))
    # word-level scrubbing misses PII split across words (phone digits, "Jane Doe"): mark a word
    # redacted when it falls inside a span of the text-level pass
    spans = find_pii(tr.text, names)
    if spans and tr.words:
        pos = 0
        for i, w in enumerate(tr.words):
            k = tr.text.find(w.text, pos)
            if k < 0:
                continue
            pos = k + len(w.text)
            for r in spans:
                if k < r.end and pos > r.start:
                    words[i] = Word(
                        r.placeholder, w.start_s, w.end_s, w.probability, w.start_frame, w.end_frame
                    )
    return Transcript(text, words, tr.language, tr.model)
