"""The report kit's tables: one ``Table`` shape (a header and rows of plain values), drawn as
Markdown (user text escaped as literal Markdown) or HTML (escaped as text), and the page's CSS —
shared by every section of every recipe's report (metrics, ablations, PAD, robustness, TTA,
privacy), so none prints a dict of its own."""

from __future__ import annotations

import html
import re
from typing import Any

Table = tuple[list[str], list[list[Any]]]  # header, rows (plain values; renderers escape)


_MD_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~])")  # a backslash that would escape punctuation
_MD_LINK_CLOSE = re.compile(r"\](?=[(\[:])")  # ``](url)``, ``][ref]``, ``]: url`` close a link


def md_escape(x: Any) -> str:
    """User text (system, variant, label and data names, notes that quote them) as literal
    Markdown — what ``html.escape`` is to report.html: ``& < >`` become entities (no raw HTML
    such as ``<img src=x onerror=...>``, no autolink), a ``]`` that would close a link or image
    (``](``, ``][``, ``]:``) and a ``|`` (a table column) are backslash-escaped, and so is a
    backslash before punctuation first (else ``\\](`` would undo the escape).  A line break
    becomes a space (it would end a cell or a quote).  Brackets, ``$`` and other text stay as
    they are, so ``acc [95% CI]`` reads as it did."""
    t = "" if x is None else str(x)
    t = _MD_BACKSLASH.sub(r"\\\\", t)
    t = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    t = _MD_LINK_CLOSE.sub(r"\\]", t).replace("|", "\\|")
    return " ".join(t.splitlines())


def _md(c: Any) -> str:
    """A Markdown table cell: :func:`md_escape` (a ``|`` or a line break would split the row)."""
    return md_escape(c)


def md_table(t: Table) -> list[str]:
    head, rows = t
    return ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(_md(c) for c in r) + " |" for r in rows
    ]


def html_table(t: Table) -> str:
    head, rows = t
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th{background:#f4f6f8}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
.fig{display:inline-block;margin:.5rem;vertical-align:top}.fig svg{max-width:100%;height:auto}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem;font-size:.85rem}.card img{width:100%}
.note{background:#fff8c5;border-left:4px solid #9a6700;padding:.4rem .8rem}.ok{color:#1a7f37}.bad{color:#cf222e}.rep{color:#9a6700}pre{white-space:pre-wrap;max-height:12rem;overflow:auto;background:#f6f8fa;padding:.4rem}
"""

CHECK = """
window.addEventListener('load',function(){
  var imgs=document.querySelectorAll('img'),svgs=document.querySelectorAll('.fig svg'),ok=0,bad=0;
  imgs.forEach(function(i){(i.complete&&i.naturalWidth>0)?ok++:bad++;});
  svgs.forEach(function(s){var b=s.getBoundingClientRect();(b.width>0&&b.height>0)?ok++:bad++;});
  document.body.setAttribute('data-rendered',ok);document.body.setAttribute('data-broken',bad);
  console.log('sovtp-report rendered='+ok+' broken='+bad);
});
"""


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))
