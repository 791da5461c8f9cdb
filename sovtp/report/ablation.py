"""The ablation section of a report: what each rung adds over the one below it, a grid's main
effects and two-way interactions, and which of those a backend cannot test.

Deltas against the base alone hide where a ladder gains or loses; so every consecutive pair of
rungs gets its own paired delta (bootstrap CI over samples) and McNemar test.  A grid gets
factorial effects: a factor's main effect is the mean accuracy of the cells at a level minus the
cells at its reference level (averaged over the other factors); an interaction A×B is how much
A's effect changes when B moves off its reference — each a per-sample contrast, so its CI is a
paired bootstrap over samples.

A backend that sees no images (``images_per_prompt == 0``, e.g. the offline ``facs`` reasoner)
answers two prompts that differ only in their visual marks identically: such a rung's delta —
or a visual factor's effect — is a tie by construction, not a finding, and is reported as
"not testable with this backend".
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sovtp.deid.policy import WITHHELD_MARKS
from sovtp.prompting.ablation import GRID_FILE, NOT_PROMPT, VISUAL_SWITCHES, visual_only
from sovtp.scoring.stats import bootstrap_delta, bootstrap_mean, mcnemar

NOT_TESTABLE = "not testable with this backend"
Right = dict[tuple[str, str], dict[str, bool]]  # (system, variant) -> sample -> correct


def correctness(rows: Iterable[dict[str, Any]], labels: Sequence[str]) -> Right:
    """Per (system, variant), each scored sample's correctness — keyed as the summary keys it
    (``sample_id`` plus ``#faceN``; a re-run row replaces the earlier one)."""
    known = set(labels)
    out: Right = defaultdict(dict)
    for r in rows:
        gold = r.get("gold")
        if gold is None or gold not in known:
            continue
        sid = str(r["sample_id"]) + (f"#face{r['face_id']}" if r.get("face_id") is not None else "")
        out[(str(r.get("system") or ""), str(r.get("variant") or ""))][sid] = r.get("label") == gold
    return dict(out)


def capability(system: dict[str, Any], name: str, default: Any = None) -> Any:
    """One capability of a run's system: as the run recorded it (``manifest.json``), else the
    backend class's declared (class-level) capabilities, else ``default``."""
    caps = system.get("capabilities") or {}
    if name in caps:
        return caps[name]
    import importlib

    from sovtp.backends.base import REGISTRY

    entry = REGISTRY.get(str(system.get("backend")))
    if entry is None:
        return default
    try:
        cls = getattr(importlib.import_module(entry.module), entry.cls)
    except (ImportError, AttributeError):
        return default
    return getattr(getattr(cls, "capabilities", None), name, default)


def reads_prompt(system: dict[str, Any]) -> bool:
    """Whether a system's answer can depend on the prompt at all (False for the offline FACS
    reasoner, which answers from the measurements: every rung ties by construction)."""
    return bool(capability(system, "reads_prompt", True))


def images_per_prompt(system: dict[str, Any]) -> int | None:
    """How many images a run's system could see; None when unknown (then assumed to see them)."""
    n = capability(system, "images_per_prompt")
    return None if n is None else int(n)


def blind_systems(systems: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The systems that see no images: name → backend."""
    out = {}
    for s in systems:
        if images_per_prompt(s) == 0:
            out[str(s.get("name") or s.get("backend"))] = str(s.get("backend"))
    return out


def prompt_blind_systems(systems: Iterable[dict[str, Any]]) -> set[str]:
    """The systems whose answers no prompt variant can change."""
    return {str(s.get("name") or s.get("backend")) for s in systems if not reads_prompt(s)}


def run_specs(run: Path, variants: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The prompt specs of a run as YAML dicts, by spec ID: shipped ones by ID, generated ones
    from their path or ``RUN/prompts/``."""
    from sovtp.resources import prompts_dir

    out = {}
    for v in variants:
        for p in (prompts_dir() / f"{v}.yaml", Path(v), run / "prompts" / Path(v).name):
            if p.suffix in (".yaml", ".yml") and p.is_file():
                d = yaml.safe_load(p.read_text()) or {}
                out[str(d.get("id", v))] = d
                break
    return out


def same_under_deid(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two prompt specs (YAML dicts) become the same prompt under ``--deid``, where no
    landmarks are drawn over blurred faces (:data:`sovtp.deid.policy.WITHHELD_MARKS`, which
    :func:`sovtp.deid.stage.deid_visual` applies): the ladder's landmarks rung then sends exactly
    what its bbox_id rung sends."""

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        visual = {**(d.get("visual") or {}), **WITHHELD_MARKS}
        return {k: v for k, v in {**d, "visual": visual}.items() if k not in NOT_PROMPT}

    return strip(a) == strip(b)


def _pair(right: Right, a: tuple[str, str], b: tuple[str, str], n_boot: int, seed: int):
    shared = sorted(set(right[a]) & set(right[b]))
    ra = np.array([right[a][k] for k in shared], bool)
    rb = np.array([right[b][k] for k in shared], bool)
    return {
        "system": a[0],
        "a": a[1],
        "b": b[1],
        "n_shared": len(shared),
        "delta_war": bootstrap_delta(ra, rb, n_boot, seed).to_dict(),
        "mcnemar": mcnemar(ra, rb).to_dict(),
    }


def steps(
    right: Right,
    order: Sequence[str],
    untestable: Callable[[str, str, str], bool],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Each rung against the rung below it, per system (paired, on shared samples)."""
    out = []
    for system in dict.fromkeys(s for s, _ in right):
        rungs = [v for v in order if (system, v) in right]
        for lo, hi in itertools.pairwise(rungs):
            d = _pair(right, (system, lo), (system, hi), n_boot, seed)
            d["testable"] = not untestable(system, lo, hi)
            out.append(d)
    return out


def factorial(
    right: Right,
    info: dict[str, Any],
    blind: Iterable[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
    deaf: Iterable[str] = (),
    inert: Iterable[str] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Main effects and two-way interactions of a grid (``grid.json``'s ``factors`` and
    ``variants``), per system, on the samples every cell of the grid answered.  ``inert``:
    factors that change nothing the run sends (``landmarks`` under ``--deid``) — their effects
    and interactions are not testable for any system."""
    cells: dict[str, dict[str, Any]] = info["variants"]
    blind, deaf = set(blind), set(deaf)
    out: dict[str, list[dict[str, Any]]] = {"effects": [], "interactions": []}
    for system in dict.fromkeys(s for s, _ in right):
        names = [v for v in cells if (system, v) in right]
        if len(names) != len(cells):
            continue  # an incomplete grid has no balanced effects
        shared = sorted(set.intersection(*(set(right[(system, v)]) for v in names)))
        if shared:
            y = np.array([[right[(system, v)][k] for v in names] for k in shared], float)
            levels = [cells[v] for v in names]
            e, i = _effects(
                y,
                levels,
                info["factors"],
                system in blind,
                n_boot,
                seed,
                system in deaf,
                inert=frozenset(inert),
            )
            out["effects"] += [{"system": system, "n": len(shared)} | d for d in e]
            out["interactions"] += [{"system": system, "n": len(shared)} | d for d in i]
    return out


def _effects(
    y: np.ndarray,
    cells: list[dict[str, Any]],
    factors: dict[str, list[Any]],
    blind: bool,
    n_boot: int,
    seed: int,
    deaf: bool = False,
    inert: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Contrasts over the columns of ``y`` (samples × cells, 1 = correct), whose factor levels
    are ``cells``; each is a per-sample weighted sum, bootstrapped over the samples."""

    def contrast(w: np.ndarray) -> dict[str, float]:
        return bootstrap_mean(y @ w, n_boot, seed).to_dict()

    def mask(f: str, level: Any) -> np.ndarray:
        return np.array([c[f] == level for c in cells])

    def testable(*fs: str) -> bool:
        if deaf:  # the system answers from measurements: no factor can move it
            return False
        if any(f in inert for f in fs):  # the factor changes nothing that is sent
            return False
        return not (blind and any(f in VISUAL_SWITCHES for f in fs))

    effects, inter = [], []
    for f, levels in factors.items():
        ref = levels[0]
        for lev in levels[1:]:
            on, off = mask(f, lev), mask(f, ref)
            w = on / on.sum() - off / off.sum()
            effects.append(
                {
                    "factor": f,
                    "level": lev,
                    "reference": ref,
                    "effect": contrast(w),
                    "testable": testable(f),
                }
            )
    for (f, fl), (g, gl) in itertools.combinations(factors.items(), 2):
        for a, b in itertools.product(fl[1:], gl[1:]):
            w = np.zeros(len(cells))
            for lf, lg, sign in ((a, b, 1), (fl[0], b, -1), (a, gl[0], -1), (fl[0], gl[0], 1)):
                m = mask(f, lf) & mask(g, lg)
                w += sign * m / m.sum()
            inter.append(
                {
                    "factors": [f, g],
                    "levels": [a, b],
                    "references": [fl[0], gl[0]],
                    "interaction": contrast(w),
                    "testable": testable(f, g),
                }
            )
    return effects, inter


def analyse(
    run: Path,
    rows: Iterable[dict[str, Any]],
    labels: Sequence[str],
    order: Sequence[str],
    cfg: dict[str, Any],
    man: dict[str, Any],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The report's ``ablation`` section: the kind of study, the systems that see no images,
    the rung pairs that cannot be tested, consecutive-rung steps or grid effects, and notes."""
    right = correctness(rows, labels)
    systems = man.get("systems") or cfg.get("systems") or []
    blind = blind_systems(systems)
    specs = run_specs(run, list(cfg.get("variants") or []) + list(order))
    grid_path = run / "prompts" / GRID_FILE
    info = json.loads(grid_path.read_text()) if grid_path.exists() else None

    deaf = prompt_blind_systems(systems)

    deid = bool(cfg.get("deid"))
    alike = {  # variant pairs that --deid turns into one prompt (no landmarks over blur)
        (a, b)
        for a, b in itertools.permutations(order, 2)
        if deid and a in specs and b in specs and same_under_deid(specs[a], specs[b])
    }

    def untestable(system: str, a: str, b: str) -> bool:
        if system in deaf:  # answers from measurements alone: no variant can move them
            return True
        if (a, b) in alike:
            return True
        return system in blind and a in specs and b in specs and visual_only(specs[a], specs[b])

    out: dict[str, Any] = {
        "blind_systems": blind,
        "prompt_blind_systems": sorted(deaf),
        "same_under_deid": sorted([a, b] for a, b in alike if order.index(a) < order.index(b)),
        "kind": "list",
        "steps": [],
    }
    if info and set(info["variants"]) <= set(order):
        out["kind"] = "grid"
        out["grid"] = {"base": info.get("base"), "factors": info["factors"]}
        # under --deid no landmarks are drawn over blurred faces: that switch sends nothing new
        inert = set(WITHHELD_MARKS) & set(info["factors"]) if deid else set()
        out["inert_under_deid"] = sorted(inert)
        out |= factorial(right, info, blind, n_boot, seed, deaf=deaf, inert=inert)
    elif len(order) >= 3:
        out["kind"] = "ladder"
        out["steps"] = steps(right, order, untestable, n_boot, seed)
    out["untestable_pairs"] = [
        [s, a, b]
        for s in dict.fromkeys(s for s, _ in right)
        for a, b in itertools.permutations(order, 2)
        if (s, a) in right and (s, b) in right and untestable(s, a, b)
    ]
    out["notes"] = notes(out)
    return out


def notes(ab: dict[str, Any]) -> list[str]:
    """Plain-language warnings about what a run cannot show (also what the CLI prints)."""
    out = []
    deaf = set(ab.get("prompt_blind_systems") or [])
    compared = ab.get("steps") or ab.get("effects") or ab.get("untestable_pairs")
    for system in sorted(deaf) if compared else ():  # one variant: nothing is compared
        out.append(
            f"{system} answers from the measurements (AUs, posture, others' expressions), not "
            f"from the prompt: no prompt variant can change its answer, so every rung, effect "
            f"and comparison here is {NOT_TESTABLE} — ties by construction, not findings. "
            "Run the ablation against a vision LLM (--base-url / --hf)."
        )
    for f in ab.get("inert_under_deid") or []:
        out.append(
            f"the {f} switch: under --deid no landmarks are drawn over blurred faces, so its "
            "effect and interactions compare identical prompts — not testable under --deid; "
            "ties by construction."
        )
    for a, b in ab.get("same_under_deid") or []:
        out.append(
            f"{a} → {b}: under --deid no landmarks are drawn over blurred faces, so these two "
            "send the same prompt — not testable under --deid; the delta is a tie by construction."
        )
    for system, backend in (ab.get("blind_systems") or {}).items():
        if system in deaf:
            continue
        pairs = [f"{a} → {b}" for s, a, b in ab.get("untestable_pairs") or [] if s == system]
        eff = [
            e["factor"]
            for e in ab.get("effects") or []
            if e["system"] == system and not e["testable"]
        ]
        what = []
        if ab.get("kind") == "ladder":
            steps_ = [
                f"{d['a']} → {d['b']}"
                for d in ab.get("steps") or []
                if d["system"] == system and not d["testable"]
            ]
            if steps_:
                what.append(f"rungs {', '.join(steps_)}")
        elif eff:
            what.append(f"effects of {', '.join(dict.fromkeys(eff))} (and their interactions)")
        elif pairs:
            what.append(f"comparisons {', '.join(pairs)}")
        if what:
            out.append(
                f"{system} (backend {backend}) sees no images, so prompts that differ only in "
                f"their visual marks get the same answers: {'; '.join(what)} — "
                f"{NOT_TESTABLE}; their deltas are ties by construction, not findings."
            )
    return out


def ablation_notes(run: str | Path) -> list[str]:
    """The notes of a run's report (``report.json``), for the CLI to print after an ablation;
    empty when there is nothing to warn about or no report yet."""
    p = Path(run) / "report.json"
    if not p.exists():
        return []
    return list((json.loads(p.read_text()).get("ablation") or {}).get("notes") or [])
