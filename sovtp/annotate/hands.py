"""The hands pass: MediaPipe HandLandmarker (21 landmarks per hand), for the NFBL cues.

Opt-in (``DetectorConfig(hands=True)``): a hand landmarker costs about as much as the face
landmarker, and most prompts never word hands.  Frames that follow one another in a clip run in
VIDEO mode, where MediaPipe tracks each hand from its last landmarks and runs its palm detector
only when it has fewer hands than it may follow; a still image (or a frame whose index or time
does not move forward, or whose size changes: a new clip) starts a fresh landmarker, so no hand
of one clip is followed into the next.  VIDEO mode is given the frames' real times (ms): its
landmark filter smooths jitter over time, which is what the motion-energy measure wants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovtp import assets
from sovtp.annotate import tasks
from sovtp.types import Hand


@dataclass(frozen=True)
class HandConfig:
    """What changes the hands the pass finds (part of the detector cache key when on)."""

    max_hands: int = 4
    min_confidence: float = 0.5
    video: bool = True  # VIDEO mode while following a clip; False: every frame alone (IMAGE)


class HandAnnotator:
    """``with HandAnnotator(cfg) as hands: hands.detect(rgb, index, t)`` → list of Hand."""

    name = "mediapipe-hands"

    def __init__(self, config: HandConfig | None = None, model_path: str | None = None):
        self.config = config or HandConfig()
        self._model_path = model_path
        self._asset: str | None = None
        self._image = None  # IMAGE-mode landmarker (stills)
        self._video = None  # VIDEO-mode landmarker of the current clip
        self._last: tuple[int, float, tuple[int, int]] | None = None
        self._ts_ms = 0
        self.calls = 0
        self.video_calls = 0

    def __enter__(self) -> HandAnnotator:
        self._asset = str(assets.resolve("hand_landmarker", self._model_path))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for lm in (self._image, self._video):
            if lm is not None:
                lm.close()
        self._image = self._video = None
        self._last = None

    def start_clip(self) -> None:
        """Follow nothing from the last clip: its VIDEO landmarker is closed (made anew)."""
        if self._video is not None:
            self._video.close()
        self._video = None
        self._last = None

    def _make(self, video: bool):
        if self._asset is None:
            raise RuntimeError("HandAnnotator used outside its `with` block")
        c = self.config
        return tasks.create(
            "HandLandmarker",
            self._asset,
            video=video,
            num_hands=c.max_hands,
            min_hand_detection_confidence=c.min_confidence,
            min_hand_presence_confidence=c.min_confidence,
            min_tracking_confidence=c.min_confidence,
        )

    def detect(
        self, image: np.ndarray, index: int = 0, timestamp_s: float | None = None
    ) -> list[Hand]:
        """The hands in one RGB uint8 frame (landmarks in pixels); ``timestamp_s=None`` (a
        still) runs in IMAGE mode, a clip's frames in VIDEO mode (``config.video``)."""
        import mediapipe as mp

        h, w = image.shape[:2]
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        self.calls += 1
        if timestamp_s is None or not self.config.video:
            if self._image is None:
                self._image = self._make(video=False)
            res = self._image.detect(mp_image)
        else:
            last = self._last
            if last is None or index <= last[0] or timestamp_s <= last[1] or (w, h) != last[2]:
                self.start_clip()
            self._last = (index, timestamp_s, (w, h))
            if self._video is None:
                self._video = self._make(video=True)
                self._ts_ms = 0
            # strictly increasing per landmarker; the clip's own time steps otherwise
            self._ts_ms = max(self._ts_ms + 1, int(round(timestamp_s * 1000)))
            self.video_calls += 1
            res = self._video.detect_for_video(mp_image, self._ts_ms)
        out = []
        for k, lms in enumerate(res.hand_landmarks):
            pts = np.array([(p.x * w, p.y * h) for p in lms], dtype=np.float32)
            cat = res.handedness[k][0] if res.handedness and res.handedness[k] else None
            out.append(
                Hand(
                    landmarks=pts,
                    label=cat.category_name if cat is not None else "",
                    score=float(cat.score) if cat is not None else 1.0,
                )
            )
        return out
