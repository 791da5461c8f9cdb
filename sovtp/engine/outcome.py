"""How a run ended, in one place for every command that writes a run folder: the counts a user
reads, the exit code a script reads, and — when nothing valid came back — the likely cause.

Exit codes (the same for bench, ablate, spot, query and pad):

- 0 every row holds a valid answer;
- 3 some rows are errors (no answer) or invalid answers (an answer the parser could not read
  against the label set), the counts printed;
- 4 no valid answer at all, with a hint at the likely cause;
- 130 interrupted (2, usage and input errors, is the CLI's own).

An invalid answer used to count as "answered": a run whose every answer was unparseable exited 0
(bench) or printed "errors 0" (spot), so a script could not tell a broken set-up from a result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovtp.jsonl import iter_jsonl, latest

EXIT_OK, EXIT_SOME, EXIT_NONE, EXIT_INTERRUPTED = 0, 3, 4, 130


@dataclass
class Outcome:
    rows: int = 0  # one per key, the latest
    errors: int = 0  # rows without an answer (the request failed)
    invalid: int = 0  # rows whose answer could not be parsed
    interrupted: bool = False
    hint: str | None = None  # the likely cause, when no valid answer came back

    @property
    def valid(self) -> int:
        return self.rows - self.errors - self.invalid

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.valid <= 0:
            return EXIT_NONE
        return EXIT_SOME if self.errors or self.invalid else EXIT_OK

    def line(self) -> str:
        """One line for the terminal: what came back."""
        return (
            f"{self.rows} rows: {self.valid} valid answers, {self.invalid} invalid answers, "
            f"{self.errors} errors"
        )


def is_invalid(row: dict[str, Any]) -> bool:
    """A row with an answer the parser could not read (an error row is not an answer)."""
    return not row.get("error") and row.get("parse_status") == "invalid"


def outcome_of(
    rows: Iterable[dict[str, Any]],
    responses: Iterable[dict[str, Any]] = (),
    interrupted: bool = False,
    structured: bool | None = None,
) -> Outcome:
    """The outcome of a run's prediction rows (one per key), with a hint from its responses when
    no valid answer came back."""
    rows = list(rows)
    o = Outcome(
        rows=len(rows),
        errors=sum(bool(r.get("error")) for r in rows),
        invalid=sum(map(is_invalid, rows)),
        interrupted=interrupted,
    )
    if o.rows == 0:
        o.hint = (
            "the run holds no row: no sample was selected (check DATA, --split, --fold, "
            "--limit) or the run stopped before its first answer"
        )
    elif o.valid <= 0:
        o.hint = likely_cause(rows, list(responses), structured)
    return o


def run_outcome(run: str | Path, interrupted: bool = False) -> Outcome:
    """:func:`outcome_of` a run folder (``predictions.jsonl`` and ``responses.jsonl``)."""
    import yaml

    run = Path(run)
    rows = latest(iter_jsonl(run / "predictions.jsonl")).values()
    cfg_p = run / "config.yaml"
    cfg = (yaml.safe_load(cfg_p.read_text()) or {}) if cfg_p.exists() else {}
    structured = cfg.get("structured") if isinstance(cfg, dict) else None
    return outcome_of(rows, iter_jsonl(run / "responses.jsonl"), interrupted, structured)


def _answers(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The answers of a ``responses.jsonl`` row as ``{text, finish_reason}``: a bench row holds
    one (``response``), a spotting row one per window (``windows``)."""
    if isinstance(r.get("windows"), list):
        return [
            {"text": w.get("answer"), "finish_reason": w.get("finish_reason")}
            for w in r["windows"]
            if isinstance(w, dict) and not w.get("error")
        ]
    inner = r.get("response")
    return [inner if isinstance(inner, dict) else r]


def likely_cause(
    rows: list[dict[str, Any]], responses: list[dict[str, Any]], structured: bool | None = None
) -> str:
    """What a user can do when no row holds a valid answer, read from the rows and answers."""
    errors = [str(r.get("error") or "") for r in rows if r.get("error")]
    if errors and len(errors) == len(rows):  # every request failed: the errors say why
        text = Counter(errors).most_common(1)[0][0]
        low = text.lower()
        if "422" in low and "structured_outputs" in low:
            return (
                "the server rejects `structured_outputs`, vLLM's field: it is not vLLM — use "
                "--server openai"
            )
        if "image" in low and ("at most" in low or "limit" in low):
            return (
                "the server refuses the number of images sent: send fewer per prompt, or raise "
                "the server's image limit (vLLM: --limit-mm-per-prompt)"
            )
        if any(k in low for k in ("connect", "refused", "timed out", "timeout", "resolve")):
            return (
                "the server did not answer: check --base-url and --timeout "
                "(`sovtp doctor --base-url URL` tests the server)"
            )
        return f"every request failed; the most frequent error: {text[:200]}"
    also = f" ({len(errors)} of {len(rows)} rows are errors too)" if errors else ""
    return _answer_cause(responses, structured) + also


def _answer_cause(responses: list[dict[str, Any]], structured: bool | None) -> str:
    """Why the answers that came back were not valid."""
    answers = [a for r in responses if not r.get("error") for a in _answers(r)]
    if answers and sum(a.get("finish_reason") == "length" for a in answers) >= len(answers) / 2:
        return "answers were cut at the token limit (finish_reason: length): raise --max-tokens"
    texts = [str(a.get("text") or "").strip() for a in answers]
    prose = [t for t in texts if t and not t.startswith(("{", "["))]
    if structured is not False and texts and len(prose) >= len(texts) / 2:
        return (
            "the answers are prose, not the JSON asked for: the server may ignore the schema — "
            "try --no-structured with --output text (`sovtp doctor --base-url URL` checks "
            "whether a server applies constraints)"
        )
    if texts and not any(texts):
        return "the answers are empty: check the model name and the server's chat template"
    return (
        "no answer named a label of the label set: check --labels / --evaluator against what the "
        "model says (responses.jsonl holds every answer)"
    )
