"""Prompt ablations: a ladder (each rung adds one element), a factorial grid of switches, or a
list of variants — all of them prompt specs, so one annotation pass serves every variant.

Grid specs are generated from a base spec and written as YAML into the run folder
(``RUN/prompts/``), so the exact prompts of an ablation live with its results.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from sovtp.errors import SovtpError
from sovtp.prompting.spec import CUE_SWITCHES, load_spec

LADDER = [
    "ladder/plain", "ladder/bbox", "ladder/bbox_id", "ladder/landmarks",
    "ladder/au_text", "ladder/au_overlay", "ladder/context", "ladder/full",
]  # fmt: skip
VISUAL_SWITCHES = ("boxes", "ids", "au_overlay", "pose", "landmarks")
FACTORS = (*VISUAL_SWITCHES, *CUE_SWITCHES, "self_correct")


def grid(base: str, factors: list[str], out_dir: Path) -> list[str]:
    """2^k specs: every on/off combination of ``factors`` applied to ``base``; returns their
    YAML paths (first: everything off)."""
    bad = [f for f in factors if f not in FACTORS]
    if bad:
        raise SovtpError(f"unknown ablation factors {bad}; known: {', '.join(FACTORS)}")
    spec = load_spec(base)
    raw = yaml.safe_load(Path(spec.source).read_text()) if spec.source else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for combo in itertools.product([False, True], repeat=len(factors)):
        d = dict(raw)
        visual = dict(d.get("visual") or {})
        cues = [c for c in (d.get("cues") or []) if c not in factors]
        on = [f for f, v in zip(factors, combo, strict=True) if v]
        for f, v in zip(factors, combo, strict=True):
            if f == "landmarks":
                visual["landmarks"] = "subset" if v else "none"
            elif f in VISUAL_SWITCHES:
                visual[f] = v
            elif f == "self_correct":
                d["self_correct"] = v
            elif v:
                cues.append(f)
        name = "+".join(on) or "none"
        d.update({"id": f"grid/{name}", "visual": visual, "cues": cues,
                  "description": f"grid over {base}: on = {name}"})  # fmt: skip
        p = out_dir / f"grid_{name}.yaml"
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        paths.append(str(p))
    return paths
