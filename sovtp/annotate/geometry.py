"""Landmark-geometry AU measures (placeholder interface; being implemented)."""

from __future__ import annotations

from sovtp.types import FrameAnnotation


def apply_geometry(frames: list[FrameAnnotation], *, still: bool) -> None:
    """Measure geometry AUs for every tracked face, in place (``aus``, ``au_sides``,
    ``au_methods``), relative to each track's neutral reference.  ``still``: one image, so the
    neutral is the canonical face, not the clip's own least expressive frames."""
    return None
