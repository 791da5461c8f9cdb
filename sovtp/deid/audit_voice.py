"""Privacy audit, voice and words: (c) speaker re-identification, (d) PII left in transcripts,
(e) words kept.

Why these three: anonymisation is only worth its cost if (c) an off-the-shelf speaker encoder can
no longer match the anonymised voice to the raw one, (d) no identifying words slip through the
transcript, and (e) the words the model needs survive (an ASR on the anonymised audio still hears
them).  Each returns plain numbers and a ``passed`` verdict, so ``sovtp audit`` and the report can
print them and a test can assert them.

Speaker embeddings come from Resemblyzer's GE2E encoder (Apache-2.0; weights resolved as
``resemblyzer_encoder``).  Its same-speaker threshold is taken at the equal-error point of the
raw-vs-raw trials of the audited set (or given), so "below threshold" means "would be rejected by
a verifier tuned on this very corpus".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from sovtp.deid.voice import DEFAULT_ALPHA, anonymise
from sovtp.deid.words import _name_patterns, find_pii


@dataclass(frozen=True)
class Utterance:
    speaker: str
    samples: np.ndarray
    rate: int
    key: str = ""


class SpeakerEncoder:
    """Resemblyzer's VoiceEncoder on CPU, weights resolved (and sha256-checked) by sovtp."""

    def __init__(self, weights: str | None = None):
        from resemblyzer import VoiceEncoder

        from sovtp import assets

        path = weights or assets.resolve("resemblyzer_encoder")
        self._enc = VoiceEncoder(device="cpu", verbose=False, weights_fpath=path)

    def embed(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """L2-normalised 256-d embedding of one utterance."""
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(np.asarray(samples, dtype=np.float32), source_sr=rate)
        if len(wav) < 1600:  # VAD trimmed everything: embed the untrimmed signal
            from sovtp.media.audio import resample

            wav = resample(np.asarray(samples, dtype=np.float32), rate, 16000)
        e = self._enc.embed_utterance(wav)
        return e / (np.linalg.norm(e) + 1e-12)


def eer(scores: Sequence[float], same: Sequence[bool]) -> tuple[float, float]:
    """Equal error rate of a verifier and the threshold where it occurs.

    ``scores`` are similarities (higher = more alike) and ``same`` whether each trial pairs one
    speaker.  Accept when score ≥ threshold.  Needs both kinds of trial.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("EER needs both same-speaker and different-speaker trials")
    thr = np.unique(s)
    thr = np.concatenate([thr, [thr[-1] + 1e-6]])
    far = np.array([(s[~y] >= t).mean() for t in thr])  # impostors accepted
    frr = np.array([(s[y] < t).mean() for t in thr])  # targets rejected
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2.0), float(thr[k])


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


@dataclass
class SpeakerAudit:
    n_utterances: int
    n_speakers: int
    threshold: float  # same-speaker threshold (EER point of raw-vs-raw trials unless given)
    eer_raw: float  # raw enrolment vs raw test: how well the encoder tells these voices apart
    eer_attack: float  # raw enrolment vs anonymised test (ignorant attacker): higher = private
    eer_anon: float  # anonymised vs anonymised (lazy-informed attacker)
    self_similarity: list[float] = field(default_factory=list)  # raw_i vs anon_i
    alphas: list[float] = field(default_factory=list)

    @property
    def max_self_similarity(self) -> float:
        return max(self.self_similarity) if self.self_similarity else float("nan")

    @property
    def fraction_below(self) -> float:
        """Share of utterances whose raw→anonymised similarity is below the threshold."""
        ss = self.self_similarity
        return sum(s < self.threshold for s in ss) / len(ss) if ss else float("nan")

    @property
    def passed(self) -> bool:
        """Every anonymised utterance falls below the same-speaker threshold of its own raw."""
        return bool(self.self_similarity) and self.max_self_similarity < self.threshold

    def to_dict(self) -> dict:
        d = asdict(self)
        d["max_self_similarity"] = self.max_self_similarity
        d["fraction_below"] = self.fraction_below
        d["passed"] = self.passed
        return d


def speaker_audit(
    utterances: Sequence[Utterance],
    anonymised: Sequence[np.ndarray] | None = None,
    alpha: float | tuple[float, float] = DEFAULT_ALPHA,
    seed: int | str | None = None,
    threshold: float | None = None,
    encoder: SpeakerEncoder | None = None,
) -> SpeakerAudit:
    """Speaker re-identification audit over several speakers.

    ``anonymised`` gives each utterance's anonymised samples (same rate); when None each is
    anonymised here with ``alpha``/``seed`` (keyed by the utterance's ``key``).  Needs ≥ 2
    speakers with ≥ 2 utterances each for the raw EER (unless ``threshold`` is given).
    """
    enc = encoder or SpeakerEncoder()
    alphas: list[float] = []
    anon: list[np.ndarray] = []
    for k, u in enumerate(utterances):
        if anonymised is not None:
            anon.append(np.asarray(anonymised[k], dtype=np.float32))
            alphas.append(float("nan"))
        else:
            a = anonymise(u.samples, u.rate, alpha=alpha, seed=seed, key=u.key or str(k))
            anon.append(a.samples)
            alphas.append(a.alpha)
    raw_e = np.stack([enc.embed(u.samples, u.rate) for u in utterances])
    anon_e = np.stack([enc.embed(x, u.rate) for x, u in zip(anon, utterances, strict=True)])
    spk = [u.speaker for u in utterances]
    pairs = _pairs(len(utterances))
    same = [spk[i] == spk[j] for i, j in pairs]
    raw_scores = [float(raw_e[i] @ raw_e[j]) for i, j in pairs]
    eer_raw, thr = eer(raw_scores, same) if any(same) and not all(same) else (float("nan"), 0.75)
    if threshold is not None:
        thr = float(threshold)
    # attack trials: enrol on raw i, test anonymised j (all i, j: i == j is a target trial)
    n = len(utterances)
    att_scores = [float(raw_e[i] @ anon_e[j]) for i in range(n) for j in range(n)]
    att_same = [spk[i] == spk[j] for i in range(n) for j in range(n)]
    eer_att = eer(att_scores, att_same)[0] if not all(att_same) else float("nan")
    an_scores = [float(anon_e[i] @ anon_e[j]) for i, j in pairs]
    eer_an = eer(an_scores, same)[0] if any(same) and not all(same) else float("nan")
    return SpeakerAudit(
        n_utterances=n,
        n_speakers=len(set(spk)),
        threshold=round(thr, 4),
        eer_raw=round(eer_raw, 4),
        eer_attack=round(eer_att, 4),
        eer_anon=round(eer_an, 4),
        self_similarity=[round(float(raw_e[i] @ anon_e[i]), 4) for i in range(n)],
        alphas=alphas,
    )


# ------------------------------------------------- (c') lazy-informed attacker: anon vs anon


@dataclass
class LinkabilityAudit:
    """VoicePrivacy's *lazy-informed* attacker: the enrolment is anonymised too (the attacker
    holds another anonymised utterance of the speaker, or ran the public anonymiser on one), and
    every anonymised trial is scored against every anonymised enrolment.  ``same`` are the
    same-speaker pairs' similarities: at or above ``threshold`` a verifier links the two."""

    n_utterances: int
    n_speakers: int
    threshold: float
    same: list[float] = field(default_factory=list)  # anonymised i vs anonymised j, one speaker
    different: list[float] = field(default_factory=list)  # ... of two speakers
    eer: float = float("nan")  # of these trials (nan without both kinds): higher = private

    @property
    def linked(self) -> int:
        """Same-speaker pairs a verifier at ``threshold`` accepts."""
        return sum(s >= self.threshold for s in self.same)

    @property
    def max_same(self) -> float:
        return max(self.same) if self.same else float("nan")

    @property
    def passed(self) -> bool:
        """No two anonymised utterances of one speaker are linked (vacuous with no such pair)."""
        return self.linked == 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(linked=self.linked, max_same=self.max_same, passed=self.passed)
        return d


def lazy_informed_audit(
    utterances: Sequence[tuple[str, np.ndarray, int]],
    threshold: float,
    encoder: SpeakerEncoder | None = None,
    embeddings: Sequence[np.ndarray] | None = None,
) -> LinkabilityAudit:
    """Anonymised enrolment vs anonymised trial over ``utterances`` — ``(speaker, anonymised
    samples, rate)``, every one already anonymised (e.g. the audio a run sent, keyed by its raw
    file or the manifest's speaker).  Each unordered pair is one trial.  ``threshold`` is the
    same-speaker cosine of the verifier (``sovtp audit``'s ``--speaker-threshold``).
    ``embeddings`` (one per utterance) skip the encoder when the caller has them."""
    if embeddings is None:
        enc = encoder or SpeakerEncoder()
        embeddings = [enc.embed(x, r) for _, x, r in utterances]
    e = np.stack([np.asarray(v, dtype=np.float64) for v in embeddings]) if embeddings else None
    spk = [u[0] for u in utterances]
    same: list[float] = []
    diff: list[float] = []
    for i, j in _pairs(len(utterances)):
        s = round(float(e[i] @ e[j]), 4)  # type: ignore[index]
        (same if spk[i] == spk[j] else diff).append(s)
    rate = float("nan")
    if same and diff:
        rate = round(eer(same + diff, [True] * len(same) + [False] * len(diff))[0], 4)
    return LinkabilityAudit(len(utterances), len(set(spk)), float(threshold), same, diff, rate)


# ---------------------------------------------------------------- (d) PII left


@dataclass
class PiiAudit:
    n_texts: int
    leftovers: list[tuple[int, str]] = field(default_factory=list)  # (text index, PII kind)
    names_found: list[int] = field(default_factory=list)  # indices of texts naming a known name

    @property
    def passed(self) -> bool:
        return not self.leftovers and not self.names_found

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


_PLACEHOLDER = re.compile(r"\[(?:NAME|EMAIL|PHONE|ADDRESS|NUMBER|URL)\]")


def pii_audit(scrubbed: Iterable[str], names: Iterable[str] = ()) -> PiiAudit:
    """Scrubbing a scrubbed text again must find nothing, and no known name may occur in it."""
    names = list(names)
    pats = _name_patterns(names)
    texts = list(scrubbed)
    out = PiiAudit(len(texts))
    for i, t in enumerate(texts):
        bare = _PLACEHOLDER.sub(" ", t)
        out.leftovers.extend((i, r.kind) for r in find_pii(bare))
        if any(p.search(bare) for p in pats):
            out.names_found.append(i)
    return out


# ---------------------------------------------------------------- (e) words kept


def normalise_words(text: str) -> list[str]:
    """Lower-cased words without punctuation (apostrophes kept), for WER."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate (substitutions + deletions + insertions) / reference words."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


@dataclass
class WordsAudit:
    wer_raw: float
    wer_anon: float
    n_utterances: int
    max_rise_points: float = 10.0

    @property
    def rise_points(self) -> float:
        return 100.0 * (self.wer_anon - self.wer_raw)

    @property
    def passed(self) -> bool:
        return self.rise_points <= self.max_rise_points

    def to_dict(self) -> dict:
        return {**asdict(self), "rise_points": round(self.rise_points, 2), "passed": self.passed}


def words_audit(
    raw: Sequence[tuple[np.ndarray, int]],
    anonymised: Sequence[np.ndarray],
    references: Sequence[str] | None = None,
    transcribe: Callable[[np.ndarray, int], str] | None = None,
    max_rise_points: float = 10.0,
) -> WordsAudit:
    """ASR word error rate on anonymised vs raw audio, pooled over utterances.

    With ``references`` both are scored against them; without, the raw audio's transcript is the
    reference (so ``wer_raw`` is 0 and ``wer_anon`` is the words the anonymisation cost).
    """
    if transcribe is None:
        from sovtp.deid.words import transcribe as asr

        def transcribe(x: np.ndarray, r: int) -> str:
            return asr(x, r).text

    errs_raw = errs_anon = n_ref = 0.0
    for k, ((x, r), y) in enumerate(zip(raw, anonymised, strict=True)):
        hyp_raw = transcribe(x, r)
        hyp_anon = transcribe(np.asarray(y, dtype=np.float32), r)
        ref = references[k] if references is not None else hyp_raw
        n = max(len(normalise_words(ref)), 1)
        errs_raw += wer(ref, hyp_raw) * n
        errs_anon += wer(ref, hyp_anon) * n
        n_ref += n
    return WordsAudit(
        wer_raw=round(errs_raw / max(n_ref, 1), 4),
        wer_anon=round(errs_anon / max(n_ref, 1), 4),
        n_utterances=len(raw),
        max_rise_points=max_rise_points,
    )
