"""Evaluator specs: one YAML per benchmark under ``evaluators/`` — which adapter reads it, which
label set (and synonyms) scores it, which metrics lead, which folds/splits exist, and how
reasoning is judged.  Adding a benchmark is adding a YAML (and an adapter if its layout is new).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sovtp.errors import SovtpError
from sovtp.labels import LabelSet, load_label_set
from sovtp.resources import evaluators_dir

# A misspelt key (``metric:`` for ``metrics:``) was dropped without a word and its default
# scored instead: every spec model refuses keys it does not declare.
_STRICT = ConfigDict(extra="forbid")


class JudgeSpec(BaseModel):
    """Reasoning scores: an LLM judge (EMER/DEEMO clue and label overlap, 0–10) or the offline
    approximation.  ``prompts`` name jinja2 templates in ``evaluators/judge/``."""

    model_config = _STRICT

    enabled: bool = False
    prompts: dict[str, str] = Field(
        default_factory=lambda: {
            "clue_overlap": "clue_overlap.j2",
            "label_overlap": "label_overlap.j2",
        }
    )
    scale: int = 10


class TaskOptions(BaseModel):
    """How a task is scored beyond its metric names (see :mod:`sovtp.scoring.tasks`)."""

    model_config = _STRICT

    positive: str | None = None  # binary: the positive class (PAD: the attack); default first
    dev_split: str | None = None  # binary: the split whose EER point fixes the threshold
    # binary with dev_split: the one split scored (default: the evaluator's split); rows of
    # other splits (train) are neither scored nor used for the threshold
    test_split: str | None = None
    iou: float = Field(0.5, gt=0, le=1)  # intervals: the IoU a spotted interval needs
    unit: Literal["frames", "seconds"] = "frames"  # intervals: inclusive frames or seconds
    # regression: the dimensions scored (manifest columns of gold values), the scale (a
    # high/low answer becomes lo + P(high)·(hi − lo)) and its midpoint (default: the centre;
    # the high/low bins and the value an invalid answer counts as)
    dims: list[str] = Field(default_factory=lambda: ["valence"])
    scale: tuple[float, float] = (-1.0, 1.0)
    midpoint: float | list[float] | None = None


class ProtocolSpec(BaseModel):
    """A protocol that regroups the splits per fold.  ``leave_one_out``: one fold per value of
    the manifest column ``by`` (PAD: the attack species) — train on ``train_split`` without
    that value, fix the threshold on ``dev_split`` without it, test on ``test_split`` rows that
    have that value or none (bona fide).  Driven by :mod:`sovtp.baselines.pad` and reported by
    :mod:`sovtp.report.pad`.  ``cross_subject``: see :meth:`EvaluatorSpec.folds_of`."""

    model_config = _STRICT

    kind: Literal["leave_one_out", "cross_subject"] = "leave_one_out"
    by: str = "attack"
    train_split: str = "train"
    dev_split: str | None = "dev"
    test_split: str = "test"
    # cross_subject: ``k`` folds of whole subjects (the column ``by``, usually ``subject``),
    # dealt by :func:`sovtp.physio.folds.subject_folds` with ``seed``; k None = leave one
    # subject out.  No subject's samples sit on both sides of a split.
    k: int | None = Field(5, ge=2)
    seed: int = 0


class EvaluatorSpec(BaseModel):
    model_config = _STRICT

    name: str
    description: str = ""
    adapter: str | None = None  # sovtp.data.adapters name; None: a manifest
    label_set: str | list[str]
    synonyms: dict[str, list[str]] = Field(default_factory=dict)
    task: Literal["single_label", "binary", "intervals", "regression"] = "single_label"
    task_options: TaskOptions = Field(default_factory=TaskOptions)
    # names in sovtp.scoring.registry for the task; empty: the task's defaults
    metrics: list[str] = Field(default_factory=list)
    headline: list[str] = Field(default_factory=list)
    splits: list[str] = Field(default_factory=lambda: ["test"])
    split: str | None = "test"
    folds: list[int] = Field(default_factory=list)
    fold: int | None = None
    # the frames a run samples unless ``--sampling`` says (None: the run's own default)
    sampling: str | None = None
    prompt: str = "sovtp/full"
    tier_by: str | None = "n_faces"
    judge: JudgeSpec = Field(default_factory=JudgeSpec)
    options: dict[str, Any] = Field(default_factory=dict)  # adapter options (e.g. window)
    protocol: ProtocolSpec | None = None  # e.g. PAD's leave-one-attack-out

    @field_validator("sampling")
    @classmethod
    def _sampling(cls, v: str | None) -> str | None:
        """Parsed now, so a bad ``sampling:`` names its file before any work."""
        from sovtp.media.sampling import Sampling

        if v is not None:
            Sampling.parse(v)
        return v

    @model_validator(mode="after")
    def _known_metrics(self) -> EvaluatorSpec:
        from sovtp.scoring import registry
        from sovtp.scoring.summary import DEFAULT_HEADLINE, DEFAULT_METRICS

        if not self.metrics:
            self.metrics = list(DEFAULT_METRICS[self.task])
        if not self.headline:
            self.headline = list(DEFAULT_HEADLINE[self.task])
        for m in [*self.metrics, *self.headline]:
            registry.get(self.task, m)  # SovtpError naming the known metrics
        return self

    def scoring(self) -> dict[str, Any]:
        """Keyword arguments for :func:`sovtp.scoring.summary.summarise` (task, metrics,
        headline, options): what the summary, ``sovtp score`` and the report follow."""
        return {
            "task": self.task,
            "metrics": list(self.metrics),
            "headline": list(self.headline),
            "options": self._task_options(),
        }

    def _task_options(self) -> dict[str, Any]:
        o = self.task_options.model_dump()
        if o.get("dev_split") and not o.get("test_split") and self.split:
            o["test_split"] = self.split  # a `--split all` run scores test rows only
        return o

    def folds_of(self, samples: list[Any]) -> list[int]:
        """The fold of each sample under a ``cross_subject`` protocol (whole subjects per fold,
        read from the sample's attribute or ``meta`` column ``protocol.by``)."""
        from sovtp.physio.folds import subject_folds

        p = self.protocol
        if p is None or p.kind != "cross_subject":
            raise SovtpError(f"evaluator {self.name} declares no cross_subject protocol")
        subj = [
            getattr(s, p.by, None) or (getattr(s, "meta", None) or {}).get(p.by) for s in samples
        ]
        return subject_folds(subj, p.k, p.seed)

    def cross_subject_split(self, samples: list[Any], fold: int, *, train: bool) -> list[Any]:
        """Fold ``fold`` of the cross-subject protocol as the test side (``train=False``) or
        every other fold as the training side: whole subjects either way."""
        folds = self.folds_of(samples)
        return [s for s, f in zip(samples, folds, strict=True) if (f != fold) == train]

    def deals_folds(self, data: str) -> bool:
        """The folds are dealt by subject here (``protocol: cross_subject``) because the
        manifest ``data`` has no fold column of its own (adapters and HF data: never)."""
        from sovtp.data.manifest import manifest_columns

        p = self.protocol
        if p is None or p.kind != "cross_subject" or ":" in data.split("/")[0]:
            return False
        path = Path(data)
        return path.is_file() and "fold" not in set(manifest_columns(path))

    def labels(self) -> LabelSet:
        base = load_label_set(self.label_set)
        if not self.synonyms:
            return base
        syn = {k: list(v) for k, v in base.synonyms.items()}
        for k, v in self.synonyms.items():
            syn.setdefault(k, []).extend(v)
        return LabelSet(base.name, list(base.labels), syn)


def available() -> list[str]:
    return sorted(p.stem for p in evaluators_dir().glob("*.yaml"))


@lru_cache(maxsize=32)
def _load(path: str) -> EvaluatorSpec:
    """The spec in the YAML at ``path``.  A YAML that does not parse, is not a mapping or fails
    the spec's checks is the user's error: one line that names the file (``--evaluator`` may be
    one of several YAMLs a run reads), then each field and why."""
    from pydantic import ValidationError

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise SovtpError(f"{path}: not valid YAML{at} ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise SovtpError(f"{path}: an evaluator is a mapping (name:, label_set:, task:, ...)")
    try:
        return EvaluatorSpec(**raw)
    except ValidationError as e:
        why = "; ".join(map(_why, e.errors()))
        raise SovtpError(f"{path}: {why}") from None
    except SovtpError as e:  # an unknown metric, from the spec's own check
        raise SovtpError(f"{path}: {e}") from None


def _why(err: Any) -> str:
    """One pydantic error as ``where: what``; a key the spec does not declare is named as one."""
    where = ".".join(map(str, err["loc"]))
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    return f"{where}: {err['msg']}"


def load_evaluator(name: str) -> EvaluatorSpec:
    """A shipped evaluator by name (``dfew``) or a YAML path."""
    p = evaluators_dir() / f"{name}.yaml"
    if not p.exists():
        p = Path(name)
    if not p.exists() or p.suffix not in (".yaml", ".yml"):
        raise SovtpError(f"unknown evaluator {name!r}; shipped: {', '.join(available())}")
    return _load(str(p.resolve()))
