"""Label sets and label normalisation (synonyms, inflections, spellings across benchmarks).

A label set is a YAML under ``prompts/labels/`` (``name``, ``labels``, ``synonyms``) or an
ad-hoc comma-separated list.  Every label also maps to an emotion *concept* (happiness, sadness,
...) so that prototypes and metrics can line up label sets that spell things differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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


@dataclass
class LabelSet:
    name: str
    labels: list[str]
    synonyms: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("a label set needs at least one label")
        self._lookup: dict[str, str] = {}
        for lab in self.labels:
            self._lookup[_norm(lab)] = lab
        for lab in self.labels:  # synonyms never override a label's own spelling
            for syn in self.synonyms.get(lab, []):
                self._lookup.setdefault(_norm(syn), lab)
        for lab in self.labels:  # then the concept's words, where unambiguous
            c = self.concept(lab)
            if c:
                for w in CONCEPTS[c]:
                    self._lookup.setdefault(_norm(w), lab)

    def concept(self, label: str) -> str | None:
        n = _norm(label)
        for c, words in CONCEPTS.items():
            if n in (_norm(w) for w in words):
                return c
        for syn in self.synonyms.get(label, []):
            for c, words in CONCEPTS.items():
                if _norm(syn) in (_norm(w) for w in words):
                    return c
        return None

    def normalize(self, text: str) -> str | None:
        """The label a word or short phrase names, or None (never a guess)."""
        return self._lookup.get(_norm(text))

    def terms(self) -> list[tuple[str, str]]:
        """(normalised term, label) pairs, longest first: what free-text matching scans for."""
        return sorted(self._lookup.items(), key=lambda kv: -len(kv[0]))

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels)}


def available() -> list[str]:
    return sorted(p.stem for p in (prompts_dir() / "labels").glob("*.yaml"))


def load_label_set(spec: str | list[str] | LabelSet) -> LabelSet:
    """A shipped set by name (``basic7``, ``mafw11``), a YAML path, or 'a,b,c' / a list."""
    if isinstance(spec, LabelSet):
        return spec
    if isinstance(spec, list):
        return LabelSet("custom", [s.strip() for s in spec if s.strip()])
    path = prompts_dir() / "labels" / f"{spec}.yaml"
    if not path.exists() and spec.endswith((".yaml", ".yml")):
        path = Path(spec)
    if path.exists():
        d = yaml.safe_load(path.read_text())
        return LabelSet(d.get("name", path.stem), list(d["labels"]), dict(d.get("synonyms") or {}))
    if "," in spec:
        return LabelSet("custom", [s.strip() for s in spec.split(",") if s.strip()])
    raise ValueError(
        f"unknown label set {spec!r}: use one of {available()} or a comma-separated list"
    )
