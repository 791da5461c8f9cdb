"""Face presentation-attack detection (PAD) data: the attack column of a manifest, the
leave-one-attack-out folds, face-crop images as crops, and *simulated* attacks for tests.

A PAD manifest is an ordinary sovtp manifest (:mod:`sovtp.data.manifest`) with

=========== ==========================================================================
label       ``bona_fide`` or ``attack`` (any spelling of ``prompts/labels/liveness.yaml``)
attack      the presentation-attack instrument species: ``print``, ``replay``, ``mask``,
            ``digital``, ... (empty for bona fide); ``attack_type`` is accepted too
split       ``train`` / ``dev`` / ``test`` (what the evaluator's protocol names)
=========== ==========================================================================

The extra columns land in ``Sample.meta``; :func:`attack_of` reads either spelling, so rows and
samples from any source agree on one ``attack_type`` value.

**Leave one attack out** (unseen-attack protocol): for each attack species *A*, a detector is
trained on bona fide + every species but *A* (train split), its threshold is fixed at the EER
point of the dev split restricted to the same seen species, and it is tested on bona fide + *A*
alone (test split).  The held-out species never reaches training or threshold selection.

The simulated attacks at the end are what the tests use for lack of a PAD dataset on this
machine: image operations that imitate the *artefacts* of a print, a screen replay and a
re-encoded digital copy.  They are named ``simulated`` everywhere they appear and say nothing
about a detector's performance on real attacks.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ATTACK_COLUMNS = ("attack", "attack_type")
BONA_FIDE = "bona_fide"
ATTACK = "attack"


def attack_of(x: Any) -> str | None:
    """The attack species of a Sample, a prediction row or a manifest row: its ``attack`` /
    ``attack_type`` field or meta entry, lower-cased; None for bona fide or unknown."""
    if isinstance(x, Mapping):
        sources: list[Mapping[str, Any]] = [x, x.get("meta") or {}]
    else:
        sources = [getattr(x, "meta", None) or {}]
    for src in sources:
        for c in ATTACK_COLUMNS:
            v = src.get(c)
            if v not in (None, ""):
                return str(v).strip().lower()
    return None


def normalise_label(label: str | None, labels: Any = None) -> str | None:
    """``bona_fide`` / ``attack`` for any spelling the liveness label set knows."""
    if label is None:
        return None
    from sovtp.labels import load_label_set

    ls = labels or load_label_set("liveness")
    return ls.normalize(str(label))


@dataclass(frozen=True)
class PadProtocol:
    """Which splits a leave-one-attack-out fold reads (mirrors the evaluator's ``protocol``)."""

    train_split: str = "train"
    dev_split: str | None = "dev"
    test_split: str = "test"


@dataclass
class PadFold:
    """One leave-one-attack-out fold: samples for training, threshold selection and test."""

    held_out: str
    train: list[Any] = field(default_factory=list)
    dev: list[Any] = field(default_factory=list)
    test: list[Any] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        def count(xs: list[Any]) -> dict[str, int]:
            out: dict[str, int] = {}
            for s in xs:
                k = attack_of(s) or BONA_FIDE
                out[k] = out.get(k, 0) + 1
            return dict(sorted(out.items()))

        return {
            "held_out": self.held_out,
            "train": count(self.train),
            "dev": count(self.dev),
            "test": count(self.test),
        }


def attack_species(samples: Iterable[Any]) -> list[str]:
    """The attack species present, sorted."""
    return sorted({a for s in samples if (a := attack_of(s))})


def _split(s: Any) -> str:
    return str(getattr(s, "split", None) or "").strip().lower()


def _check(samples: Sequence[Any]) -> None:
    bad = [
        s.id
        for s in samples
        if (normalise_label(s.label) == ATTACK) != (attack_of(s) is not None)
        and s.label is not None
    ]
    if bad:
        raise ValueError(
            f"{len(bad)} sample(s) whose label and attack column disagree (an attack needs its "
            f"species, a bona fide presentation none): {', '.join(bad[:5])}"
        )


def leave_one_attack_out(
    samples: Iterable[Any],
    protocol: PadProtocol | None = None,
    species: Sequence[str] | None = None,
) -> list[PadFold]:
    """One fold per attack species (or per ``species`` given): see the module docstring.
    Samples are split by their ``split`` field (case-insensitive); a fold with no training
    attack, no test attack or no bona fide on either side raises — it could not be scored."""
    p = protocol or PadProtocol()
    xs = list(samples)
    _check(xs)
    present = attack_species(xs)
    if len(present) < 2:
        raise ValueError(
            "leave-one-attack-out needs at least two attack species in the 'attack' column (one "
            f"held out, the others to train on); the manifest has {len(present)}: {present}"
        )
    kinds = list(species) if species else present
    unknown = sorted(set(kinds) - set(present))
    if unknown:
        raise ValueError(f"no samples of attack species {unknown}; present: {present}")
    folds = []
    for a in kinds:
        f = PadFold(a)
        for s in xs:
            k, sp = attack_of(s), _split(s)
            if sp == p.train_split.lower() and k != a:
                f.train.append(s)
            elif p.dev_split and sp == p.dev_split.lower() and k != a:
                f.dev.append(s)
            elif sp == p.test_split.lower() and k in (None, a):
                f.test.append(s)
        # dev may be absent (the threshold then comes from test, flagged), but not one-sided:
        # an EER point on one class is no threshold at all
        for part in ("train", "test", "dev") if f.dev else ("train", "test"):
            got = getattr(f, part)
            if not any(attack_of(s) for s in got) or all(attack_of(s) for s in got):
                raise ValueError(
                    f"fold holding out {a!r}: its {part} side needs bona fide and attack "
                    f"samples ({f.describe()[part]})"
                )
        folds.append(f)
    return folds


def image_crops(samples: Iterable[Any], size: int) -> list[np.ndarray]:
    """For datasets shipped as face crops (many PAD sets are): each sample's image, resized
    to ``size`` square, as a (1, size, size, 3) uint8 array — the shape
    :meth:`sovtp.baselines.data.CropSet.from_arrays` takes.  No detection, no alignment: the
    pixels the attack left are what the detector must see."""
    from PIL import Image

    out = []
    for s in samples:
        with Image.open(s.media) as im:
            im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            out.append(np.asarray(im, dtype=np.uint8)[None])
    return out


# ------------------------------------------------------------------ simulated attacks (tests)

SIMULATED = ("print", "replay", "digital")


def _to_float(img: np.ndarray) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def simulate_print(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A *simulated* print attack: CMY halftone screens at three angles (their beating makes
    moiré), the reduced gamut and warm cast of ink on paper, and a paper border."""
    rng = np.random.default_rng(seed)
    x = _to_float(img)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = 3.0 + rng.uniform(0, 0.6)
    cmy = 1.0 - x
    out = np.empty_like(cmy)
    for c, ang in enumerate((15.0, 75.0, 0.0)):
        t = np.deg2rad(ang + rng.uniform(-3, 3))
        u = (xx * np.cos(t) + yy * np.sin(t)) * 2 * np.pi / period
        v = (-xx * np.sin(t) + yy * np.cos(t)) * 2 * np.pi / period
        screen = 0.5 + 0.25 * (np.cos(u) + np.cos(v))  # dot screen in [0, 1]
        out[..., c] = (cmy[..., c] > screen).astype(np.float32) * 0.85 + cmy[..., c] * 0.15
    x = 1.0 - out
    x = 0.12 + 0.76 * x  # paper white is not white, ink black is not black
    x = x * np.array([1.04, 1.0, 0.9], np.float32)  # warm cast
    b = max(2, int(round(min(h, w) * 0.08)))
    x[:b], x[-b:], x[:, :b], x[:, -b:] = 0.93, 0.93, 0.93, 0.93  # the paper's edge
    return _to_uint8(x)


def simulate_replay(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A *simulated* screen replay: the image on an RGB stripe sub-pixel grid, a display
    gamma, and the low-frequency moiré of a camera sampling a screen."""
    rng = np.random.default_rng(seed)
    x = _to_float(img)
    h, w = x.shape[:2]
    stripes = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        stripes[:, c::3, c] = 1.0
    x = x * (0.45 + 0.55 * stripes) * 1.35  # each column lights one sub-pixel
    x = np.clip(x, 0, 1) ** 0.8  # display gamma, brighter mid-tones
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f, t = rng.uniform(0.08, 0.14), rng.uniform(0, np.pi)
    moire = 1.0 + 0.18 * np.cos(2 * np.pi * f * (xx * np.cos(t) + yy * np.sin(t)))
    x = x * moire[..., None] * np.array([0.92, 1.0, 1.08], np.float32)  # cool backlight
    return _to_uint8(x)


def simulate_digital(img: np.ndarray, seed: int = 0, quality: int = 12) -> np.ndarray:
    """A *simulated* digital attack: resampled down and back up (aliasing, blur) and JPEG
    re-compressed twice at low quality (block and ringing artefacts)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    im = Image.fromarray(np.asarray(img, np.uint8))
    w, h = im.size
    k = rng.uniform(0.4, 0.55)
    im = im.resize((max(4, int(w * k)), max(4, int(h * k))), Image.Resampling.NEAREST)
    im = im.resize((w, h), Image.Resampling.BILINEAR)
    for q in (quality, quality + 5):
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=q)
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(im, np.uint8)


def simulate_attack(img: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """One of :data:`SIMULATED` applied to an RGB uint8 face crop (same size out)."""
    fn = {"print": simulate_print, "replay": simulate_replay, "digital": simulate_digital}
    if kind not in fn:
        raise ValueError(f"no simulated attack {kind!r}; one of {', '.join(SIMULATED)}")
    return fn[kind](img, seed)
