"""PromptSpec: a YAML that names a template, the visual marks, the worded cues and the output form.

Templates render in a jinja2 ``SandboxedEnvironment`` with ``StrictUndefined``: a template that
names a missing variable fails loudly, and user data (transcripts, names, labels) only ever
enters as variables — never as template source — so ``{{ 7*7 }}`` in a transcript stays text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from sovtp.contracts import OUTPUTS, check_output
from sovtp.errors import PromptError
from sovtp.render.marks import VisualSpec
from sovtp.resources import prompts_dir

CUE_SWITCHES = ("au", "context")


@dataclass
class PromptSpec:
    id: str
    template: str
    version: int = 1
    description: str = ""
    system: str | None = None
    visual: VisualSpec = field(default_factory=VisualSpec)
    cues: tuple[str, ...] = ()
    self_correct: bool = False
    output: str = "json"
    max_images: int = 4
    grid: bool = False
    label_set: str = "basic7"
    audio: bool = False  # attach the (anonymised) voice as an input_audio part (omni models)
    source: str = ""
    template_text: str = ""

    @property
    def hash(self) -> str:
        """sha256 over everything that changes the prompt (spec fields + template sources)."""
        blob = json.dumps(
            {
                "id": self.id,
                "version": self.version,
                "system": self.system,
                "visual": self.visual.__dict__,
                "cues": list(self.cues),
                "self_correct": self.self_correct,
                "output": self.output,
                "max_images": self.max_images,
                "grid": self.grid,
                "audio": self.audio,
                "template": self.template_text,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_output(self, output: str | None) -> PromptSpec:
        """This spec under another output contract (``--output``); its hash changes with it, so
        rows and caches never mix the two."""
        if output is None or output == self.output:
            return self
        return replace(self, output=check_output(output))


def _env(root: Path):
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        loader=FileSystemLoader(str(root / "templates")),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
    )


@lru_cache(maxsize=8)
def environment(root: str):
    return _env(Path(root))


def _template_sources(root: Path, name: str) -> str:
    tdir = root / "templates"
    parts = [(tdir / name).read_text()]
    parts.extend(p.read_text() for p in sorted(tdir.glob("_*.j2")))
    return "\n".join(parts)


def load_spec(spec_id: str, root: Path | None = None) -> PromptSpec:
    """Load ``prompts/<id>.yaml`` (or a YAML path) into a PromptSpec."""
    root = root or prompts_dir()
    path = root / f"{spec_id}.yaml"
    if not path.exists() and spec_id.endswith((".yaml", ".yml")) and Path(spec_id).exists():
        path = Path(spec_id)
    if not path.exists():
        raise PromptError(
            f"unknown prompt {spec_id!r}; see `sovtp prompts list` ({', '.join(list_specs(root))})"
        )
    try:
        d: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
        cues = tuple(d.get("cues") or ())
        bad = [c for c in cues if c not in CUE_SWITCHES]
        if bad:
            raise PromptError(f"{path}: unknown cue switches {bad}; known: {list(CUE_SWITCHES)}")
        output = d.get("output", "json")
        if output not in OUTPUTS:
            raise PromptError(f"{path}: output must be one of {', '.join(OUTPUTS)}")
        template = d["template"]
        if not (root / "templates" / template).exists():
            raise PromptError(f"{path}: template {template!r} not found in {root / 'templates'}")
        return PromptSpec(
            id=d.get("id", spec_id),
            template=template,
            version=int(d.get("version", 1)),
            description=d.get("description", ""),
            system=d.get("system"),
            visual=VisualSpec.from_dict(d.get("visual")),
            cues=cues,
            self_correct=bool(d.get("self_correct", False)),
            output=output,
            max_images=int(d.get("max_images", 4)),
            grid=bool(d.get("grid", False)),
            label_set=d.get("label_set", "basic7"),
            audio=bool(d.get("audio", False)),
            source=str(path),
            template_text=_template_sources(root, template),
        )
    except (KeyError, ValueError, yaml.YAMLError) as e:
        raise PromptError(f"{path}: {e}") from e


def list_specs(root: Path | None = None) -> list[str]:
    root = root or prompts_dir()
    out = []
    for p in sorted(root.rglob("*.yaml")):
        rel = p.relative_to(root)
        if rel.parts[0] in ("labels", "templates"):
            continue
        out.append(str(rel.with_suffix("")))
    return out


def render_text(spec: PromptSpec, context: dict[str, Any], root: Path | None = None) -> str:
    """Render the spec's template with ``context`` as variables (never as source)."""
    from jinja2 import TemplateError

    root = root or prompts_dir()
    try:
        text = environment(str(root)).get_template(spec.template).render(**context)
    except TemplateError as e:
        raise PromptError(f"{spec.id}: template {spec.template} failed: {e}") from e
    lines = [ln.rstrip() for ln in text.strip().splitlines()]
    out: list[str] = []
    for ln in lines:  # collapse runs of blank lines the conditionals leave behind
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out)
