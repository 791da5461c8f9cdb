"""The release spreadsheets (``.xlsx``) read as they ship, with openpyxl.

CAS(ME)², CASME II, SAMM and DFEW publish their labels as Excel workbooks, some with positional
columns and no header (CAS(ME)² sheet 0), some with title rows above the header (SAMM).  A sheet
is returned as rows of strings: numbers that are whole print without ``.0`` (a frame number 46,
a subject 1), empty cells are ``""``.  openpyxl is imported only here and only when a workbook
is read (the ``data`` extra).
"""

from __future__ import annotations

from pathlib import Path

from sovtp.data.sample import ManifestError

Sheet = list[list[str]]


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def read_workbook(path: Path) -> list[tuple[str, Sheet]]:
    """Every sheet of ``path`` as ``(name, rows)``, in workbook order; fully empty rows kept out."""
    try:
        import openpyxl
    except ImportError as e:  # pragma: no cover - the data extra installs it
        raise ManifestError(f"reading {path} needs openpyxl: pip install 'sovtp[data]'") from e
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zipfile.BadZipFile, KeyError, InvalidFileException ...
        raise ManifestError(f"{path}: not a readable .xlsx workbook ({type(e).__name__})") from None
    try:
        out = []
        for ws in wb.worksheets:
            rows = [[_cell(v) for v in r] for r in ws.iter_rows(values_only=True)]
            out.append((ws.title, [r for r in rows if any(r)]))
        return out
    finally:
        wb.close()


def find_one(root: Path, pattern: str, what: str) -> Path:
    """The one file under ``root`` matching ``pattern`` (a release names its workbook with a
    date or version: ``CASME2-coding-20140508.xlsx``); refused when there is none or several."""
    hits = sorted(p for p in root.glob(pattern) if not p.name.startswith("~$"))
    if not hits:
        raise ManifestError(f"{root}: expected {what} ({pattern}); see the adapter's layout")
    if len(hits) > 1:
        raise ManifestError(
            f"{root}: several files match {pattern} ({', '.join(p.name for p in hits)}); keep one"
        )
    return hits[0]
