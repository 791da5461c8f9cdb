"""Visual marks (supervision) and visual-prompt baselines drawn on frames."""

from sovtp.render.marks import VisualSpec, draw_marks, grid, render_frame

__all__ = ["VisualSpec", "draw_marks", "grid", "render_frame"]
