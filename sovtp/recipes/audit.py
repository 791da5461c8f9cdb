"""``sovtp audit RUN`` as a recipe: setup (the run folder, held by the engine's lock so no run
writes it meanwhile) → run (:func:`sovtp.deid.audit_run.audit_sent`: every payload the run
recorded as sent — images, audio, transcripts — checked for faces, voices and names, whatever
the run's mode) → report (``privacy.json`` written atomically, the run's report rewritten with its
privacy section).  The verdict fails when there was nothing to check, when payloads the index
lists are missing, and when any sent image holds a face."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sovtp.atomic import write_json
from sovtp.engine.folder import RunFolder


def audit_run_folder(
    target: Path,
    out: Path | None = None,
    *,
    reid: bool = False,
    speaker: bool = False,
    speaker_threshold: float = 0.75,
) -> tuple[dict[str, Any], Path, Path | None]:
    """Audit what ``target`` sent; returns the summary, the ``privacy.json`` written and the
    report rewritten (None when the audit went elsewhere or ``target`` holds no run)."""
    from sovtp.deid.audit_run import PRIVACY_JSON, audit_sent

    folder = RunFolder(target, "audit")
    folder.lock()  # only held: the folder stays the kind of run it is
    try:
        summary = audit_sent(
            target, reid=reid, speaker=speaker, speaker_threshold=speaker_threshold
        )
        path = (out or target) / PRIVACY_JSON
        write_json(path, summary)
        report = None
        if out is None and (target / "predictions.jsonl").exists():
            from sovtp.report.build import write_report

            write_report(target)  # the run's report shows the audit as its privacy section
            report = target / "report.html"
    finally:
        folder.close()
    return summary, path, report
