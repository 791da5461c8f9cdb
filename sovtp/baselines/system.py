"""A trained CNN as a system of a run: the one class every CNN answer comes from.

``sovtp bench --system cnn:CKPT`` (with or without ``--tta``), :func:`CnnSystem.predict` on a
sample, and the tests all use :class:`CnnSystem`.  It answers with label scores directly — a
:class:`~sovtp.records.Prediction` from the mean frame logit of the subject's aligned face crops
(:func:`~sovtp.baselines.predict.crops_prediction`) — never with text to be parsed back.

Crops are cut from the very annotation the prompts use (``crops``), so LLM systems and the CNN
read one annotation of a sample.  With ``tta`` (``bn``, ``tent``, ``fisher:K``) it is *stateful*:
it adapts online across the samples it answers and records the un-adapted logits beside
(:class:`~sovtp.baselines.tta_stream.StreamRecord`), so it must be asked in sample order from one thread
(the run engine does so).  The model loads on first use: a run imports torch only when it has a
CNN system.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sovtp.records import Prediction


def cnn_variant(ckpt: str | Path, tta: str = "none") -> str:
    """A CNN system's variant: its checkpoint folder's name (no torch needed), and
    ``+tta=<method>`` when it adapts on the test stream."""
    from sovtp.baselines.checkpoint import variant_name  # reads nothing, imports no torch

    name = variant_name(ckpt)
    return name if tta == "none" else f"{name}+tta={tta}"


class CnnSystem:
    """A checkpoint as a :class:`~sovtp.systems.Predictor`."""

    def __init__(
        self,
        ckpt: str | Path,
        tta: str = "none",
        *,
        device: str | None = None,
        sampling: str | None = None,
        **tta_options: Any,
    ):
        self.ckpt = str(ckpt)
        self.tta = tta
        self.device = device
        self._sampling = sampling
        self.tta_options = tta_options
        self.variant = cnn_variant(ckpt, tta)
        self.stateful = tta != "none"
        self._loaded: Any = None
        self.stream: Any = None  # the StreamRecord under TTA

    @property
    def loaded(self) -> Any:
        if self._loaded is None:
            from sovtp.baselines.predict import load

            self._loaded = load(self.ckpt, self.device)
            if self.stateful:
                from sovtp.baselines.tta_stream import StreamRecord

                self.stream = StreamRecord(self._loaded, self.tta, **self.tta_options)
        return self._loaded

    @property
    def name(self) -> str:
        """``cnn:<model>`` (loads the checkpoint)."""
        return self.loaded.name

    @property
    def labels(self) -> list[str]:
        return list(self.loaded.labels)

    @property
    def sampling(self) -> str:
        return self._sampling or self.loaded.config.get("sampling", "uniform:8")

    def crops(self, clip: Any, frames: Any, face: int | None) -> Any:
        """The subject's face crops (N, S, S, 3) uint8 at the model's size."""
        from sovtp.baselines.data import clip_crops

        return clip_crops(clip, frames, self.loaded.size, subject=face)

    def answer(self, sample_id: str, crops: Any, gold: str | None = None) -> Prediction:
        """One clip's crops → its Prediction (label scores, arg-max label).  Under TTA this
        adapts the model (the next call sees the change) and records the sample with its
        ``gold`` for the before/after scores."""
        from sovtp.baselines.predict import crops_prediction

        m = self.loaded
        step = None
        if self.stream is not None:
            rec = self.stream

            def step(x: Any) -> Any:
                return rec.step(x, gold, sample_id)

        return crops_prediction(m, crops, sample_id, gold, self.variant, logits_of=step)

    def predict(self, sample: Any, detector: Any = None) -> Prediction:
        """A sample on its own: annotate (cached), cut its crops, answer."""
        from sovtp.baselines.data import sample_crops

        m = self.loaded
        if getattr(sample, "error", None):
            return Prediction(
                sample_id=sample.id,
                system=m.name,
                variant=self.variant,
                gold=sample.label,
                parse_status="invalid",
                error=sample.error,
            )
        own = None
        if detector is None:
            from sovtp.annotate.mediapipe import DetectorConfig, MediaPipeAnnotator

            own = detector = MediaPipeAnnotator(DetectorConfig()).__enter__()
        try:
            c = sample_crops(
                sample, m.size, self.sampling, subject=m.config.get("subject"), detector=detector
            )
        finally:
            if own is not None:
                own.close()
        return self.answer(sample.id, c, sample.label)

    def result(self) -> dict[str, Any] | None:
        """Before/after scores over the stream answered (TTA), or None."""
        if self.stream is None:
            return None
        return {"variant": self.variant, "checkpoint": self.ckpt, **self.stream.result()}
