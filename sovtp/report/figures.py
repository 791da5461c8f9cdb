"""matplotlib figures as inline SVG strings (the HTML report carries no external file).

Labels and model names are data: matplotlib would read ``$...$`` in them as mathtext (and an odd
``$`` crashes the report), so every figure is drawn with math parsing off and its text kept as
SVG text (escaped by matplotlib), never as markup.
"""

from __future__ import annotations

import html
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
    """Row-normalised confusion matrix (recall per gold class, counts written in the cells),
    with the invalid column, as SVG written directly: one per system × variant, so a ladder of
    many variants pays microseconds per matrix rather than a matplotlib figure (~0.15 s) each.
    Labels and titles are escaped text, never markup."""
    m = np.asarray(conf["matrix"], float)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n, k = m.shape
    cell, left = 34, 12 + 7 * max([len(str(x)) for x in conf["labels"]] + [4])
    top = 28
    bottom = 12 + 6 * max([len(str(x)) for x in conf["columns"]] + [6])
    w, h = max(left + cell * k + 10, 12 + 6 * len(str(title))), top + cell * n + bottom
    esc = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" role="img">',
        f"<title>{esc(str(title))}</title>",
        f'<text x="4" y="16" font-size="11">{esc(str(title))}</text>',
    ]
    for i in range(n):
        y = top + i * cell
        out.append(
            f'<text x="{left - 4}" y="{y + cell / 2 + 4}" font-size="10" '
            f'text-anchor="end">{esc(str(conf["labels"][i]))}</text>'
        )
        for j in range(k):
            x = left + j * cell
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{_blue(norm[i, j])}" stroke="#fff"/>'
            )
            if m[i, j]:
                c = "#fff" if norm[i, j] > 0.6 else "#000"
                out.append(
                    f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" font-size="9" '
                    f'text-anchor="middle" fill="{c}">{int(m[i, j])}</text>'
                )
    for j in range(k):
        x, y = left + j * cell + cell / 2, top + n * cell + 8
        out.append(
            f'<text x="{x}" y="{y}" font-size="10" text-anchor="end" '
            f'transform="rotate(-45 {x} {y})">{esc(str(conf["columns"][j]))}</text>'
        )
    out.append(
        f'<text x="{left + cell * k / 2}" y="{h - 2}" font-size="10" '
        'text-anchor="middle">predicted (rows: gold)</text></svg>'
    )
    return "".join(out)


def _blue(v: float) -> str:
    """White → matplotlib's Blues dark end, linear in the row share."""
    a, b = (247, 251, 255), (8, 48, 107)
    r, g, bl = (round(x + (y - x) * float(v)) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def bars_svg(entries: list[dict[str, Any]], metric: str = "war", title: str = "") -> str:
    """One bar per system × variant with its 95 % CI as an error bar (the title names the
    interval's method: Wilson for a proportion such as WAR, else bootstrap)."""
    plt = _plt()
    with plt.rc_context(RC):
        return _bars(plt, entries, metric, title)


def _bars(plt, entries: list[dict[str, Any]], metric: str, title: str) -> str:
    names = [f"{e['variant']}\n{e['system']}" if e["system"] else e["variant"] for e in entries]
    vals = np.array([e["ci"][metric]["value"] for e in entries]) * 100
    lo = np.array([e["ci"][metric]["low"] for e in entries]) * 100
    hi = np.array([e["ci"][metric]["high"] for e in entries]) * 100
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(entries) + 1.5), 3.2))
    ax.bar(
        range(len(vals)),
        vals,
        color="#4C72B0",
        yerr=[vals - lo, hi - vals],
        capsize=4,
        ecolor="#333",
    )
    ax.set_xticks(range(len(vals)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric.upper()} (%)")
    ax.set_ylim(0, max(100.0, float(hi.max()) + 5 if len(hi) else 100.0))
    methods = sorted({str(e["ci"][metric].get("method", "bootstrap")) for e in entries})
    how = " / ".join("Wilson" if m == "wilson" else m for m in methods) or "bootstrap"
    ax.set_title(title or f"{metric.upper()} with 95% CI ({how})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)
