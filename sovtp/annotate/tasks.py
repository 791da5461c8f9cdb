"""MediaPipe Tasks graphs, built in one place.

Why: the face, pose and hand landmarkers, the tile scanner and de-identification's face finder
and mesher each spelled out ``BaseOptions`` → ``<Task>Options`` → ``<Task>.create_from_options``
with their own running-mode switch, and two of them read BlazeFace out of the
``face_landmarker`` bundle the same way.  Here a graph is its task name, its model and the
options that differ.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any


def create(task: str, model: str | Path | bytes, *, video: bool = False, **options: Any) -> Any:
    """``create("PoseLandmarker", path, video=True, num_poses=2)``: the graph
    ``mediapipe.tasks.python.vision.<task>`` over ``model`` (a ``.task``/``.tflite`` path, or the
    model's bytes — which the caller keeps alive beside the graph), in VIDEO running mode when
    ``video`` (frames with timestamps, tracking between them) else IMAGE."""
    from mediapipe.tasks.python import BaseOptions, vision

    base = (
        BaseOptions(model_asset_buffer=model)
        if isinstance(model, bytes)
        else BaseOptions(model_asset_path=str(model))
    )
    mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
    settings = getattr(vision, f"{task}Options")(base_options=base, running_mode=mode, **options)
    return getattr(vision, task).create_from_options(settings)


def bundled_face_detector(bundle: str | Path) -> bytes:
    """The BlazeFace detector inside a ``face_landmarker.task`` bundle (the same file the mesh
    uses, so no second asset is pinned for the short-range face detector)."""
    with zipfile.ZipFile(bundle) as z:
        return z.read("face_detector.tflite")
