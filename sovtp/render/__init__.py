"""Visual marks (supervision) and visual-prompt baselines drawn on frames."""

from sovtp.render.layout import PlacedLabel, mark_style
from sovtp.render.marks import VisualSpec, draw_marks, grid, render_frame

__all__ = ["PlacedLabel", "VisualSpec", "draw_marks", "grid", "mark_style", "render_frame"]
