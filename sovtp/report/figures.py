"""matplotlib figures as inline SVG strings (the HTML report carries no external file).

Labels and model names are data: matplotlib would read ``$...$`` in them as mathtext (and an odd
``$`` crashes the report), so every figure is drawn with math parsing off and its text kept as
SVG text (escaped by matplotlib), never as markup.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

# names render literally; text stays text in the SVG (smaller, searchable, selectable)
RC = {"text.parse_math": False, "text.usetex": False, "svg.fonttype": "none"}


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context(RC):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg") :]  # drop the XML prolog and doctype: inline SVG in HTML


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def confusion_svg(conf: dict[str, Any], title: str) -> str:
    """Row-normalised confusion matrix (recall per gold class), with the invalid column."""
    plt = _plt()
    with plt.rc_context(RC):
        return _confusion(plt, conf, title)


def _confusion(plt, conf: dict[str, Any], title: str) -> str:
    m = np.asarray(conf["matrix"], float)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n, k = m.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(k), conf["columns"], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), conf["labels"], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(n):
        for j in range(k):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_title(title, fontsize=9)
    return _svg(fig)


def bars_svg(entries: list[dict[str, Any]], metric: str = "war", title: str = "") -> str:
    """One bar per system × variant with its bootstrap 95 % CI as an error bar."""
    plt = _plt()
    with plt.rc_context(RC):
        return _bars(plt, entries, metric, title)


def _bars(plt, entries: list[dict[str, Any]], metric: str, title: str) -> str:
    names = [f"{e['variant']}\n{e['system']}" if e["system"] else e["variant"] for e in entries]
    vals = np.array([e["ci"][metric]["value"] for e in entries]) * 100
    lo = np.array([e["ci"][metric]["low"] for e in entries]) * 100
    hi = np.array([e["ci"][metric]["high"] for e in entries]) * 100
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(entries) + 1.5), 3.2))
    ax.bar(range(len(vals)), vals, color="#4C72B0",
           yerr=[vals - lo, hi - vals], capsize=4, ecolor="#333")  # fmt: skip
    ax.set_xticks(range(len(vals)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric.upper()} (%)")
    ax.set_ylim(0, max(100.0, float(hi.max()) + 5 if len(hi) else 100.0))
    ax.set_title(title or f"{metric.upper()} with 95% bootstrap CI", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)
