"""Label sets and label normalisation (synonyms, inflections, spellings across benchmarks).

A label set is a YAML under ``prompts/labels/`` (``name``, ``labels``, ``synonyms``) or an
ad-hoc comma-separated list.  Every label also maps to an emotion *concept* (happiness, sadness,
...) so that prototypes and metrics can line up label sets that spell things differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from sovtp.resources import prompts_dir

# concept -> words that name it; the first is the concept's own name
CONCEPTS: dict[str, list[str]] = {
    "happiness": [
        "happiness",
        "happy",
        "joy",
        "joyful",
        "pleased",
        "glad",
        "delighted",
        "cheerful",
        "smiling",
    ],
    "sadness": ["sadness", "sad", "sorrow", "unhappy", "grief", "depressed", "crying"],
    "surprise": ["surprise", "surprised", "astonished", "amazed", "shocked", "startled"],
    "fear": ["fear", "fearful", "afraid", "scared", "frightened", "terrified"],
    "anger": ["anger", "angry", "mad", "furious", "annoyed", "irritated", "rage"],
    "disgust": ["disgust", "disgusted", "revulsion", "repulsed"],
    "contempt": ["contempt", "contemptuous", "scorn", "disdain"],
    "neutral": ["neutral", "calm", "expressionless", "relaxed"],
    "anxiety": ["anxiety", "anxious", "worried", "nervous"],
    "helplessness": ["helplessness", "helpless", "powerless"],
    "disappointment": ["disappointment", "disappointed"],
}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z ]+", " ", text.lower()).strip()


_CONCEPT_OF_WORD = {_norm(w): c for c, words in CONCEPTS.items() for w in words}


@dataclass
class LabelSet:
    """Treat as immutable: loaded sets are cached and shared."""

    name: str
    labels: list[str]
    synonyms: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("a label set needs at least one label")
        self._concepts = {lab: self._find_concept(lab) for lab in self.labels}
        lookup: dict[str, str] = {_norm(lab): lab for lab in self.labels}
        for lab in self.labels:  # synonyms never override a label's own spelling
            for syn in self.synonyms.get(lab, []):
                lookup.setdefault(_norm(syn), lab)
        for lab, c in self._concepts.items():  # then the concept's words, where unambiguous
            for w in CONCEPTS.get(c or "", []):
                lookup.setdefault(_norm(w), lab)
        self._lookup = lookup
        self._terms = sorted(lookup.items(), key=lambda kv: -len(kv[0]))

    def _find_concept(self, label: str) -> str | None:
        for word in [label, *self.synonyms.get(label, [])]:
            c = _CONCEPT_OF_WORD.get(_norm(word))
            if c:
                return c
        return None

    def concept(self, label: str) -> str | None:
        """The emotion concept a label of this set names (happiness, sadness, ...), or None."""
        return self._concepts[label] if label in self._concepts else self._find_concept(label)

    def normalize(self, text: str) -> str | None:
        """The label a word or short phrase names, or None (never a guess)."""
        return self._lookup.get(_norm(text))

    def terms(self) -> list[tuple[str, str]]:
        """(normalised term, label) pairs, longest first: what free-text matching scans for."""
        return self._terms

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels)}


def available() -> list[str]:
    return sorted(p.stem for p in (prompts_dir() / "labels").glob("*.yaml"))


@lru_cache(maxsize=64)
def _from_file(path: str, mtime_ns: int) -> LabelSet:
    d = yaml.safe_load(Path(path).read_text())
    # str() everything: YAML reads a bare yes/no/on as a boolean and 1 as an int
    syn = {str(k): [str(w) for w in v] for k, v in (d.get("synonyms") or {}).items()}
    return LabelSet(str(d.get("name", Path(path).stem)), [str(x) for x in d["labels"]], syn)


def _load_file(path: Path) -> LabelSet:
    return _from_file(str(path.resolve()), path.stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _from_list(labels: tuple[str, ...]) -> LabelSet:
    """A list holding a shipped set's labels *is* that set (with its synonyms), in the list's
    order: a Query carries only its labels — shuffled under ``--label-order`` — and the parser
    must still know that "content" means happy in basic7."""
    for name in available():
        shipped = _load_file(prompts_dir() / "labels" / f"{name}.yaml")
        if list(labels) == shipped.labels:
            return shipped
        if sorted(labels) == sorted(shipped.labels) and len(set(labels)) == len(labels):
            return LabelSet(shipped.name, list(labels), shipped.synonyms)
    return LabelSet("custom", list(labels))


LABEL_ORDERS = ("fixed", "shuffled", "reversed")


def ordered_labels(labels: list[str], order: str, seed: int, key: str) -> list[str]:
    """The labels in the order a prompt shows them.  ``shuffled`` is seeded by (seed, sample
    key), so a rerun shows each sample the same order and samples differ from each other: label
    order alone is known to move a model's accuracy by many points, so it is a protocol knob."""
    if order == "fixed":
        return list(labels)
    if order == "reversed":
        return list(reversed(labels))
    if order == "shuffled":
        import hashlib
        import random

        digest = hashlib.sha256(f"{seed}|{key}".encode()).digest()
        out = list(labels)
        random.Random(int.from_bytes(digest[:8], "big")).shuffle(out)
        return out
    raise ValueError(f"label order must be one of {', '.join(LABEL_ORDERS)}; got {order!r}")


def load_label_set(spec: str | list[str] | tuple[str, ...] | LabelSet) -> LabelSet:
    """A shipped set by name (``basic7``, ``mafw11``), a YAML path, or 'a,b,c' / a list.

    Loads are cached (a file by path and modification time), so calling this per answer on a
    benchmark's hot path costs a dictionary lookup.
    """
    if isinstance(spec, LabelSet):
        return spec
    if isinstance(spec, (list, tuple)):
        return _from_list(tuple(s.strip() for s in spec if s.strip()))
    path = prompts_dir() / "labels" / f"{spec}.yaml"
    if not path.exists() and spec.endswith((".yaml", ".yml")):
        path = Path(spec)
    if path.exists():
        return _load_file(path)
    if "," in spec:
        return _from_list(tuple(s.strip() for s in spec.split(",") if s.strip()))
    raise ValueError(
        f"unknown label set {spec!r}: use one of {available()} or a comma-separated list"
    )
