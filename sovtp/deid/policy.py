"""What de-identification allows, as plain data — no models, no numpy — so that the CLI, the run
config, the prepare pipeline, the face stage and the report all read one definition:

- :data:`MODES`, how a face is obscured (:func:`sovtp.deid.faces.obscure`), checked by
  :func:`check_mode`;
- :data:`WITHHELD_MARKS`, the visual marks never drawn over an obscured face
  (:func:`sovtp.deid.stage.deid_visual`): landmarks — 478 points drawn over a blurred face trace
  its outline, eyes, nose and mouth back onto it.  Prompt variants that differ only there send
  the same request under ``--deid`` (the ablation report reads this).
"""

from __future__ import annotations

MODES = ("blur", "pixelate", "fill")
DEFAULT_MODE = "blur"  # DEEMO blurs; what runs made before --deid-mode used
WITHHELD_MARKS: dict[str, str] = {"landmarks": "none"}  # VisualSpec field → its value under deid


def check_mode(mode: str, what: str = "face obscuring mode") -> str:
    """``mode`` when it is one of :data:`MODES`; else a ValueError naming ``what`` was given, the
    choices and the value."""
    if mode not in MODES:
        raise ValueError(f"{what} must be one of {' | '.join(MODES)}, not {mode!r}")
    return mode
