"""Prompt ablations: a ladder (each rung adds one element, up to the five-stage SoVTP prompt), a
factorial grid of switches, or a list of variants — all of them prompt specs, so one annotation
pass serves every variant.

Grid specs are generated from a base spec and written as YAML into the run folder
(``RUN/prompts/``), with ``grid.json`` naming each variant's factor levels, so the exact prompts
of an ablation live with its results and the report can compute main effects and interactions.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from sovtp.errors import SovtpError
from sovtp.prompting.spec import CUE_SWITCHES, load_spec

LADDER = [
    "ladder/plain",
    "ladder/bbox",
    "ladder/bbox_id",
    "ladder/landmarks",
    "ladder/au_text",
    "ladder/au_overlay",
    "ladder/context",
    "ladder/full",
    "sovtp/full",
]
VISUAL_SWITCHES = ("boxes", "ids", "au_overlay", "pose", "landmarks")
# the ``output`` axis: the same prompt answering in stages, as JSON or as a bare label
OUTPUT_MODES = ("staged", "json", "label")
FACTORS = (*VISUAL_SWITCHES, *CUE_SWITCHES, "self_correct", "output")
GRID_FILE = "grid.json"
# spec fields that do not change what a model is asked
NOT_PROMPT = ("id", "description", "version")


def parse_factor(text: str) -> tuple[str, tuple[Any, ...]]:
    """A grid switch and its levels, the first being the reference: ``boxes`` → (off, on);
    ``output`` → staged, json, label; ``output=json|label`` → those modes."""
    name, _, levels = text.partition("=")
    name = name.strip()
    if name not in FACTORS:
        raise SovtpError(f"unknown ablation factor {name!r}; known: {', '.join(FACTORS)}")
    if name == "output":
        modes = tuple(m.strip() for m in levels.split("|") if m.strip()) if levels else OUTPUT_MODES
        if len(modes) < 2 or len(set(modes)) != len(modes):
            raise SovtpError(f"output axis needs two or more distinct modes, not {text!r}")
        return name, modes
    if levels:
        raise SovtpError(f"switch {name!r} is on/off and takes no levels ({text!r})")
    return name, (False, True)


def _name(levels: dict[str, Any]) -> str:
    on = [f for f, v in levels.items() if v is True]
    on += [f"{f}={v}" for f, v in levels.items() if not isinstance(v, bool)]
    return "+".join(on) or "none"


def grid(base: str, factors: list[str], out_dir: Path) -> list[str]:
    """Every combination of ``factors``' levels applied to ``base`` (2^k for on/off switches,
    times the modes of an ``output`` axis); writes one YAML per variant and ``grid.json`` into
    ``out_dir`` and returns the YAML paths (first: every factor at its reference level)."""
    axes = dict(parse_factor(f) for f in factors)
    if len(axes) != len(factors):
        raise SovtpError(f"a factor is repeated in {factors}")
    spec = load_spec(base)
    raw = yaml.safe_load(Path(spec.source).read_text()) if spec.source else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, table = [], {}
    for combo in itertools.product(*axes.values()):
        levels = dict(zip(axes, combo, strict=True))
        d = dict(raw)
        visual = dict(d.get("visual") or {})
        cues = [c for c in (d.get("cues") or []) if c not in axes]
        for f, v in levels.items():
            if f == "landmarks":
                visual["landmarks"] = "subset" if v else "none"
            elif f in VISUAL_SWITCHES:
                visual[f] = v
            elif f == "self_correct":
                d["self_correct"] = v
            elif f == "output":
                d["output"] = v
            elif v:
                cues.append(f)
        name = _name(levels)
        d.update(
            {
                "id": f"grid/{name}",
                "visual": visual,
                "cues": cues,
                "description": f"grid over {base}: {name}",
            }
        )
        p = out_dir / f"grid_{name}.yaml"
        p.write_text(yaml.safe_dump(d, sort_keys=False))
        paths.append(str(p))
        table[d["id"]] = levels
    info = {"base": base, "factors": {f: list(v) for f, v in axes.items()}, "variants": table}
    (out_dir / GRID_FILE).write_text(json.dumps(info, indent=1))
    return paths


def visual_only(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two prompt specs (their YAML as dicts) differ in the marks drawn and nothing
    else: same text, cues, output — a difference only a model that sees the images can show."""
    keys = (set(a) | set(b)) - set(NOT_PROMPT)
    diff = {k for k in keys if a.get(k) != b.get(k)}
    return diff == {"visual"}
