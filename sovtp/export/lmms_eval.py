"""``sovtp export lmms-eval``: a benchmark as an lmms-eval task folder.

lmms-eval ships none of DFEW, MAFW, FERV39k, MER or BAH, and loads an outside task folder with
``--include_path DIR``.  The folder written here holds:

- ``<task>.yaml``: a task on local data (``dataset_path: json`` with ``data_files``), prompts by
  ``doc_to_messages``, answers scored by ``process_results`` and aggregated to WAR, UAR, macro F1
  and the invalid rate;
- ``<task>.jsonl``: one document per query a ``sovtp bench`` run would send (one per sample, or
  one per labelled face), each with its gold label (normalised by the evaluator's label set),
  the output contract and the chat messages;
- ``images/``: the annotated frames as sent, rendered by sovtp's one prepare pipeline (the
  annotation itself is cached in sovtp's annotation cache as for any run) and named by their
  sha256, so a frame shared by two documents is stored once;
- ``utils.py``: :mod:`sovtp.export.lmms_task_utils`, copied (prompts from the JSONL; scoring by
  ``sovtp.scoring``, the parser and metrics ``sovtp bench`` uses);
- ``sovtp_task.json``: the label set with its synonyms and the settings of the export.

Samples are read, filtered and limited exactly as ``sovtp bench`` reads them
(:mod:`sovtp.recipes.bench`: the evaluator's default split and fold, ``--limit``), and the
queries are built by :func:`sovtp.export.queries.sample_queries`, the bench worker's steps.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovtp.errors import SovtpError

if TYPE_CHECKING:
    from sovtp.engine.config import BenchConfig

UTILS = Path(__file__).with_name("lmms_task_utils.py")

_YAML = """\
# lmms-eval task written by `sovtp export lmms-eval` (sovtp {version}); run it with
#   OPENAI_API_KEY=... lmms-eval --model openai --model_args model_version=NAME,base_url=URL \\
#     --include_path {folder} --tasks {task}
# Documents: {n_docs} queries of {n_samples} samples ({evaluator}, prompt {prompt} {spec_hash}).
# Images are sovtp's annotated frames (JPEG); lmms-eval re-encodes them as PNG unless
# LMMS_IMAGE_ENCODE_FORMAT=JPEG is set.
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data_file}
test_split: test
output_type: generate_until
doc_to_messages: !function utils.doc_to_messages
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: !function utils.doc_to_target
process_results: !function utils.process_results
generation_kwargs:
  max_new_tokens: {max_tokens}
  temperature: 0
  do_sample: false
metric_list:
  - metric: war
    aggregation: !function utils.aggregate_war
    higher_is_better: true
  - metric: uar
    aggregation: !function utils.aggregate_uar
    higher_is_better: true
  - metric: macro_f1
    aggregation: !function utils.aggregate_macro_f1
    higher_is_better: true
  - metric: invalid_rate
    aggregation: !function utils.aggregate_invalid_rate
    higher_is_better: false
metadata:
  version: 1
"""


@dataclass
class Exported:
    """What an export wrote: the folder, the task name, counts and the samples that failed."""

    folder: Path
    task: str
    samples: int = 0
    docs: int = 0
    images: int = 0
    dropped_audio: int = 0
    failed: list[str] = field(default_factory=list)  # "sample: why"


def task_name(evaluator: str) -> str:
    """``sovtp_<evaluator>``, spelled as an lmms-eval task name (letters, digits, _)."""
    stem = Path(evaluator).stem if evaluator.endswith((".yaml", ".yml")) else evaluator
    return "sovtp_" + re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_").lower()


def _messages(q: Any, images: list[Any], names: list[str]) -> tuple[list[dict[str, Any]], int]:
    """A Query's OpenAI messages as lmms-eval chat messages: text parts as they are, each image
    part (in order) a file under ``images/``; audio parts cannot be carried and are counted."""
    out: list[dict[str, Any]] = []
    k = dropped = 0
    for m in q.messages:
        content = m["content"]
        if isinstance(content, str):
            out.append({"role": m["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image_url":
                parts.append({"type": "image", "url": names[k]})
                k += 1
            else:
                dropped += 1
        out.append({"role": m["role"], "content": parts})
    if k != len(images):
        raise SovtpError(f"query {q.id}: {k} image parts for {len(images)} images")
    return out, dropped


def _prepare_folder(out: Path) -> None:
    """An empty folder, or one a previous export wrote (replaced); anything else is refused."""
    if out.exists() and not out.is_dir():  # else mkdir's "[Errno 20] Not a directory"
        raise SovtpError(f"{out} exists and is a file; choose a folder")
    if out.exists() and any(out.iterdir()):
        if not (out / "sovtp_task.json").is_file():
            raise SovtpError(
                f"{out} exists and is not a sovtp lmms-eval export; choose an empty folder"
            )
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True, exist_ok=True)


def export_lmms_eval(
    cfg: BenchConfig,
    out: Path,
    *,
    task: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Exported:
    """Write the task folder ``out`` for ``cfg`` — the samples, prepare knobs, label set and
    ``max_tokens`` of a ``sovtp bench`` run, read as bench reads them; its one variant is the
    prompt."""
    from sovtp import __version__
    from sovtp.data.manifest import check_gold
    from sovtp.evaluator import load_evaluator
    from sovtp.export.queries import sample_queries
    from sovtp.prepare import PrepareOptions, Preparer
    from sovtp.prompting.spec import load_spec
    from sovtp.recipes.bench import label_set, resolve, samples

    if not cfg.evaluator:
        raise SovtpError("an lmms-eval task needs an evaluator (its label set and metrics)")
    if len(cfg.variants) != 1:
        raise SovtpError(f"an lmms-eval task holds one prompt; got {cfg.variants}")
    ev = load_evaluator(cfg.evaluator)
    cfg = resolve(cfg)
    spec_id = cfg.variants[0]
    ls = label_set(cfg)
    chosen = list(samples(cfg))
    if not chosen:
        raise SovtpError(f"{cfg.data}: no sample to export")
    check_gold(chosen, ls)
    spec = load_spec(spec_id)
    name = task or task_name(cfg.evaluator)
    out = Path(out).resolve()
    _prepare_folder(out)
    res = Exported(out, name, samples=len(chosen))
    docs_file = out / f"{name}.jsonl"
    data_root = (
        Path(cfg.root)
        if cfg.root
        else (Path(cfg.data).parent if Path(cfg.data).is_file() else None)
    )
    options = PrepareOptions(**cfg.settings())
    written: set[str] = set()
    with Preparer(options) as prep, docs_file.open("w", encoding="utf-8") as f:
        for n, s in enumerate(chosen, 1):
            try:
                built = sample_queries(
                    prep, s, spec, labels=ls, subject=cfg.subject, root=data_root
                )
            except Exception as e:  # noqa: BLE001 - a bad sample is listed, the rest exported
                res.failed.append(f"{s.id}: {type(e).__name__}: {e}")
                continue
            for q, images in built:
                names = []
                for im in images:
                    rel = f"images/{hashlib.sha256(im.jpeg).hexdigest()[:32]}.jpg"
                    if rel not in written:
                        (out / rel).write_bytes(im.jpeg)
                        written.add(rel)
                    names.append(rel)
                msgs, dropped = _messages(q, images, names)
                res.dropped_audio += dropped
                gold = s.face_labels.get(q.subject, s.label) if s.face_labels else s.label
                doc = {
                    "doc_id": res.docs,
                    "sample_id": s.id,
                    "face": q.subject,
                    "gold": ls.normalize(gold) if gold else None,
                    "output": q.output,
                    "spec": q.spec_id,
                    "spec_hash": q.spec_hash,
                    "messages": json.dumps(msgs, ensure_ascii=False),
                }
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")
                res.docs += 1
            if progress is not None:
                progress(n)
    res.images = len(written)
    shutil.copyfile(UTILS, out / "utils.py")
    meta = {
        "sovtp": __version__,
        "evaluator": ev.name,
        "data": cfg.data,
        "split": cfg.split,
        "fold": cfg.fold,
        "limit": cfg.limit,
        "prompt": spec.id,
        "settings": cfg.settings(),
        "label_set": {"name": ls.name, "labels": list(ls.labels), "synonyms": ls.synonyms},
        "failed": res.failed,
    }
    (out / "sovtp_task.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    (out / f"{name}.yaml").write_text(
        _YAML.format(
            version=__version__,
            folder=out,
            task=name,
            n_docs=res.docs,
            n_samples=len(chosen),
            evaluator=ev.name,
            prompt=spec.id,
            spec_hash=spec.hash[:16],
            data_file=json.dumps(str(docs_file)),
            max_tokens=cfg.max_tokens,
        )
    )
    return res
