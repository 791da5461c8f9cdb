"""Write notebooks/*.ipynb from the cell lists below (outputs are not committed; the test suite
executes the notebooks).  Run after editing: python tools/make_notebooks.py"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

MD, PY = "md", "py"

QUICKSTART = [
    (
        MD,
        """# sovtp quickstart: one clip, end to end

Annotate a clip, look at the marks, read the Set-of-Vision-Text prompt, and ask the offline FACS
reasoner — then point the same call at a vision LLM served by `vllm serve`.

The clip is made here from `skimage.data.astronaut()` (public domain): her face pans across a
640×360 frame for 3 s.""",
    ),
    (
        PY,
        """import tempfile
from pathlib import Path

from sovtp.media.sample import make_sample

work = Path(tempfile.mkdtemp(prefix="sovtp-quickstart-"))
clip_path = make_sample(work)
clip_path""",
    ),
    (
        MD,
        """## 1. Annotate

`annotate` decodes only the sampled frames, finds faces (MediaPipe FaceLandmarker: 478 landmarks,
52 blendshapes → FACS action units, head pose) and bodies (PoseLandmarker), gives each face a
stable ID across frames, and derives cues. The result is cached by content hash.""",
    ),
    (
        PY,
        """from sovtp.prepare import PrepareOptions, Preparer

prep = Preparer(PrepareOptions(sampling="uniform:4"))  # the one prepare pipeline
clip, frames = prep.annotate(clip_path)
print(len(clip.frames), "frames; face IDs:", clip.track_ids)
for cue in clip.cues[:8]:
    print(f"{cue.kind:10s} {cue.text}")""",
    ),
    (
        MD,
        "## 2. Look at the marks\n\nNumbered face boxes, a landmark subset and the strongest AUs, drawn with supervision.",
    ),
    (
        PY,
        """import matplotlib.pyplot as plt

from sovtp.render.marks import VisualSpec, render_frame

spec = VisualSpec(boxes=True, ids=True, landmarks="subset", au_overlay=True)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
for ax, fr, fa in zip(axes, frames[::2], clip.frames[::2]):
    ax.imshow(render_frame(fr, fa, spec))
    ax.set_title(f"frame {fr.index} · {fr.timestamp_s:.1f} s")
    ax.axis("off")
plt.show()""",
    ),
    (
        MD,
        "## 3. Read the prompt\n\nThe prompt is rendered from a PromptSpec (`prompts/sovtp/full.yaml`) and a sandboxed jinja2 template. Its output contract is `staged`: the five stages come before the label.",
    ),
    (
        PY,
        """from sovtp.prompting.spec import load_spec

query, images = prep.query(clip, frames, load_spec("sovtp/full"))
print(f"{len(images)} images, output {query.output}, labels {query.labels}\\n")
print(query.text())""",
    ),
    (
        MD,
        "## 4. Ask offline\n\nThe `facs` backend matches the measured AUs against EMFACS prototypes — no GPU, no network.",
    ),
    (
        PY,
        """from sovtp.query import run_query

(result,) = run_query(prep, clip, frames, "sovtp/full", "facs", {}, work / "query")
print(result.prediction.label, result.prediction.confidence)
for stage, text in result.prediction.stages.items():
    print(f"{stage}: {text}")
sorted(p.name for p in (work / "query").iterdir())""",
    ),
    (
        MD,
        """## 5. The same call against a vision LLM

Serve a model with vLLM's OpenAI-compatible server, then use the `openai` backend (or
`sovtp query clip.mp4 --base-url http://localhost:8000/v1`):

```bash
vllm serve Qwen/Qwen2.5-VL-7B-Instruct --limit-mm-per-prompt '{"image": 8}'
```

```python
run_query(prep, clip, frames, "sovtp/full", "openai",
          {"base_url": "http://localhost:8000/v1", "server": "vllm"}, work / "qwen")
```

With `server="vllm"` the answer is bound to the staged schema (stages, then a label from the
set) through vLLM's structured outputs; `sovtp doctor --base-url URL` checks that the server
really applies them.
In-process alternatives: backend `transformers` (`{"model": "<hub id or folder>"}`) and `vllm`.""",
    ),
]

ABLATION = [
    (
        MD,
        """# A small prompt ablation, end to end

Which element of the prompt buys how much? `sovtp ablate --ladder` runs the eight rungs
(plain → boxes → IDs → landmarks → AU text → AU overlay → context → full) on one annotation pass
and reports each rung's WAR/UAR with bootstrap CIs, the delta to the base and McNemar's p.

Here: a handful of clips made from the astronaut photo, and the offline FACS backend. That
backend reads the measured AUs, not the pixels or the wording, so its rungs tie — the point is
the machinery; with a vision LLM (`--base-url`) the rungs differ.""",
    ),
    (
        PY,
        """import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.data import astronaut

from sovtp.media.sample import make_sample

work = Path(tempfile.mkdtemp(prefix="sovtp-ablation-"))
img = astronaut()
rows = []
for k, (size, flip, label) in enumerate([(256, False, "happy"), (256, True, "happy"), (200, False, "neutral"), (320, True, "sad")]):
    a = img[:, ::-1] if flip else img
    Image.fromarray(a).resize((size, size)).save(work / f"img{k}.png")
    rows.append({"id": f"img{k}", "media": f"img{k}.png", "label": label})
make_sample(work)
rows.append({"id": "pan", "media": "astronaut_pan.mp4", "label": "happy"})
(work / "manifest.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
print((work / "manifest.jsonl").read_text())""",
    ),
    (
        PY,
        """from sovtp.prompting.ablation import LADDER
from sovtp.engine.config import BenchConfig
from sovtp.recipes.bench import run_bench

cfg = BenchConfig(data=str(work / "manifest.jsonl"), variants=LADDER, sampling="uniform:4",
                  out=str(work / "ablation"), n_boot=500)
run, stats = run_bench(cfg)
print(f"{stats.annotations} clips annotated once, {stats.detector_calls} frames through the detectors, "
      f"{len(LADDER)} variants")""",
    ),
    (MD, "## The table"),
    (
        PY,
        """import pandas as pd

rep = json.loads((run / "report.json").read_text())
table = pd.DataFrame([
    {"variant": e["variant"], "n": e["n"],
     "WAR": round(100 * e["ci"]["war"]["value"], 1),
     "WAR 95% CI": f"[{100 * e['ci']['war']['low']:.1f}, {100 * e['ci']['war']['high']:.1f}]",
     "UAR": round(100 * e["ci"]["uar"]["value"], 1),
     "invalid %": round(100 * e["metrics"]["invalid_rate"], 1)}
    for e in rep["scoring"]["systems"]])
table""",
    ),
    (
        PY,
        """pd.DataFrame([
    {"variant": c["b"]["variant"], "vs": c["a"]["variant"],
     "ΔWAR": round(100 * c["delta_war"]["value"], 1),
     "ΔWAR 95% CI": f"[{100 * c['delta_war']['low']:.1f}, {100 * c['delta_war']['high']:.1f}]",
     "McNemar p": c["mcnemar"]["p_value"]}
    for c in rep["scoring"]["comparisons"]])""",
    ),
    (MD, "## The figure (the same one report.html shows)"),
    (
        PY,
        """from IPython.display import SVG, display

from sovtp.report.figures import bars_svg

display(SVG(bars_svg(rep["scoring"]["systems"], "war", "WAR per rung, 95% bootstrap CI")))""",
    ),
    (
        MD,
        """From the command line the same study is

```bash
sovtp ablate manifest.jsonl --ladder -o runs/ablation            # offline
sovtp ablate manifest.jsonl --ladder --base-url http://localhost:8000/v1 --server vllm
sovtp ablate manifest.jsonl --grid boxes,au,context -o runs/grid # 2^3 factorial grid
```""",
    ),
]

REPORT = [
    (
        MD,
        """# Reading a report

A run folder holds everything needed to trust (or redo) its numbers. This notebook makes a small
run and walks through what each part of the report means.""",
    ),
    (
        PY,
        """import json
import tempfile
from pathlib import Path

from PIL import Image
from skimage.data import astronaut

from sovtp.engine.config import BenchConfig
from sovtp.recipes.bench import run_bench

work = Path(tempfile.mkdtemp(prefix="sovtp-report-"))
img = astronaut()
rows = []
for k, label in enumerate(["happy", "sad", "happy", "neutral", "happy", "surprise"]):
    Image.fromarray(img[:, ::-1] if k % 2 else img).resize((192 + 16 * k, 192 + 16 * k)).save(work / f"s{k}.png")
    rows.append({"id": f"s{k}", "media": f"s{k}.png", "label": label})
(work / "m.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
run, _ = run_bench(BenchConfig(data=str(work / "m.jsonl"), variants=["ladder/plain", "sovtp/full"],
                               out=str(work / "run"), n_boot=500))
sorted(p.name for p in run.iterdir())""",
    ),
    (
        MD,
        """## The files

- `config.yaml` — the resolved configuration (no API key ever).
- `manifest.json` — versions (sovtp, mediapipe, transformers, ...), prompt hashes, detector config,
  seeds, and the frame indices each sample was shown.
- `responses.jsonl` / `predictions.jsonl` — one row per sample × system × variant, appended as
  answers arrive; `--resume` continues from them.
- `report.json` / `report.md` / `report.html` — rebuilt any time with `sovtp report RUN`.""",
    ),
    (
        PY,
        """man = json.loads((run / "manifest.json").read_text())
{k: man[k] for k in ("variants", "sampling", "seeds")} | {"prompt hashes": {v: p["hash"][:12] for v, p in man["prompts"].items()}}""",
    ),
    (
        MD,
        """## Headline metrics

**WAR** (weighted average recall) is accuracy; **UAR** is the mean recall over the gold classes,
so a rare class weighs as much as a frequent one. An answer that could not be parsed, or a failed
request, is **invalid**: it stays in the denominator and is never right. Each number carries a
95 % bootstrap interval — with a handful of samples, a wide one.""",
    ),
    (
        PY,
        """rep = json.loads((run / "report.json").read_text())
for e in rep["scoring"]["systems"]:
    w, u = e["ci"]["war"], e["ci"]["uar"]
    print(f"{e['variant']:14s} n={e['n']}  WAR {100*w['value']:.1f} [{100*w['low']:.1f}, {100*w['high']:.1f}]"
          f"  UAR {100*u['value']:.1f}  invalid {100*e['metrics']['invalid_rate']:.1f}%  parse {e['parse']}")""",
    ),
    (
        MD,
        """## Paired comparison

Variants are compared on the *same* samples: the bootstrap CI of the accuracy difference, and
McNemar's test on the discordant pairs (b: only A right, c: only B right).""",
    ),
    (
        PY,
        """for c in rep["scoring"]["comparisons"]:
    print(c["b"]["variant"], "vs", c["a"]["variant"], c["delta_war"], c["mcnemar"])""",
    ),
    (
        MD,
        "## Confusion matrix and per-class scores\n\nRows are gold labels, columns answers; the last column counts invalid answers.",
    ),
    (
        PY,
        """from IPython.display import SVG, display

from sovtp.report.figures import confusion_svg

e = rep["scoring"]["systems"][-1]
display(SVG(confusion_svg(e["confusion"], e["variant"])))
{lab: {k: round(v, 2) for k, v in pc.items()} for lab, pc in e["per_class"].items()}""",
    ),
    (
        MD,
        "## The gallery\n\nThe first samples' annotated frame, prompt, answer, gold label and parse status, as in the HTML report.",
    ),
    (
        PY,
        """from sovtp.jsonl import iter_jsonl

g = next(iter_jsonl(run / "gallery.jsonl"))
display(Image.open(run / g["image"]))
print("gold:", g["gold"], "· answer:", g["label"], "· parse:", g["parse_status"])
print(g["prompt"][:600])""",
    ),
    (
        MD,
        "Open `report.html` in a browser for all of the above on one page (it is self-contained: figures are inline SVG, images data URLs).",
    ),
    (
        PY,
        """print(run / "report.html", f"{(run / 'report.html').stat().st_size / 1024:.0f} KiB")""",
    ),
]


def write(name: str, cells) -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbf.v4.new_markdown_cell(src) if kind == MD else nbf.v4.new_code_cell(src)
        for kind, src in cells
    ]
    out = Path(__file__).resolve().parents[1] / "notebooks" / name
    nbf.write(nb, out)
    print("wrote", out)


if __name__ == "__main__":
    write("quickstart.ipynb", QUICKSTART)
    write("ablation_study.ipynb", ABLATION)
    write("reading_a_report.ipynb", REPORT)
