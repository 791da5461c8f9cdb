"""What was not measured on a face, and why — worded apart from what was measured.

"Not measured" and "measured, nothing found" are different statements: an AU withdrawn because
the mouth is open (AU17), the head turned too far for geometry, or a hand covers the mouth is
unknown, not absent.  The measures record why (``Face.au_unmeasured``, ``Face.occlusion``,
``Face.au_reference``, filled by :mod:`sovtp.annotate.aus`, ``geometry`` and ``occlusion``);
these functions word it per face over the clip, with the share of frames, for the cues.
"""

from __future__ import annotations

from collections import Counter

from sovtp.annotate.timeline import INTERPRETED_AUS, span_word
from sovtp.facs import au_label, au_sort_key
from sovtp.types import Cue, Face

# The AU labels drawn on each face hold its top codes per frame (VisualSpec.au_top_k, default 3)
# at facs.DEFAULT_THRESHOLD, the threshold the text uses: every AU drawn on the subject is worded.
DRAWN_TOP_K = 3
NO_METHOD = "no measure for it ran on this face"


def frames_of(k: int, n: int) -> str:
    """Of the sampled frames that show this face (not of the clip's: it may leave the shot)."""
    return "in every frame showing the face" if k == n else f"in {k} of {n} frames showing the face"


def unmeasured(series: list[tuple[float, Face]]) -> dict[str, dict]:
    """AU → why it was not measured on this face, for the AUs FACS reading relies on and any AU
    a measure withdrew (an open mouth, a turned head, a hand over the mouth): the frames that
    did not measure it, of how many, and the reasons with their counts (``Face.au_unmeasured``;
    :data:`NO_METHOD` where no measure said why)."""
    n = len(series)
    codes = set(INTERPRETED_AUS) | {c for _, f in series for c in f.au_unmeasured}
    out: dict[str, dict] = {}
    for c in sorted(codes, key=au_sort_key):
        missing = [f for _, f in series if c not in f.aus]
        if not missing:
            continue
        why = Counter(f.au_unmeasured.get(c, NO_METHOD) for f in missing)
        out[c] = {"frames": len(missing), "of": n, "why": dict(why.most_common())}
    return out


def unmeasured_phrase(gaps: dict[str, dict]) -> str:
    """'AU17 chin raiser (mouth open); AU6 cheek raiser, AU9 nose wrinkler (no measure for it
    ran on this face); AU12 lip corner puller, AU15 lip corner depressor in 1 of 3 frames showing
    the face (mouth covered by a hand)' — grouped by reason and share, each group said once."""
    groups: dict[tuple[str, int, int], list[str]] = {}
    for c, g in gaps.items():
        groups.setdefault((", ".join(g["why"]), g["frames"], g["of"]), []).append(au_label(c))
    return "; ".join(
        ", ".join(names) + ("" if k == n else f" {frames_of(k, n)}") + f" ({why})"
        for (why, k, n), names in groups.items()
    )


def reference_phrase(series: list[tuple[float, Face]], traces: dict) -> str:
    """Which neutral the geometric AUs were measured against (``Face.au_reference``), when any
    geometric AU is worded: 'geometric AUs (AU9, AU15) measured against this person's own
    neutral frames' | '... against MediaPipe's canonical face (no neutral frame of this person
    in the clip)'."""
    geo = [c for c, t in traces.items() if t.method == "geometry"]
    refs = Counter(f.au_reference for _, f in series if f.au_reference)
    if not geo or not refs:
        return ""
    ref = refs.most_common(1)[0][0]
    why = "a single image" if len(series) == 1 else "no neutral frame of this person in the clip"
    against = (
        "this person's own neutral frames"
        if ref == "own neutral"
        else f"MediaPipe's canonical face ({why})"
        if ref == "canonical face"
        else ref
    )
    return f"geometric AUs ({', '.join(geo)}) measured against {against}"


def occlusion_cue(track_id: int, series: list[tuple[float, Face]]) -> Cue | None:
    """'mouth covered by a hand (in 3 of 8 sampled frames, 1.0–3.1 s)' from ``Face.occlusion``."""
    from sovtp.annotate.occlusion import unmeasured_phrase as hidden_phrase

    n = len(series)
    seen: dict[str, list[float]] = {}
    for t, f in series:
        for region, cause in f.occlusion.items():
            seen.setdefault(hidden_phrase(region, cause), []).append(t)
    if not seen:
        return None
    parts = []
    for what, ts in seen.items():
        when = frames_of(len(ts), n) + ("" if len(ts) == n else f", {span_word(min(ts), max(ts))}")
        parts.append(f"{what} ({when})" if n > 1 else what)
    return Cue(
        "head",
        "occlusion",
        "; ".join(parts),
        track_id,
        {what: len(ts) for what, ts in seen.items()},
        source="occlusion",
    )
