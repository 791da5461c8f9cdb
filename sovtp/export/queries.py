"""The queries a run sends for one sample, outside a run: what ``sovtp prompt MANIFEST --id``
shows and what ``sovtp export`` writes.

The steps are the bench worker's (:meth:`sovtp.engine.workers.Preparer._build`) on the one prepare
pipeline (:mod:`sovtp.prepare`): the sample's frame interval
(:func:`~sovtp.data.sample.sampling_for`), its audio and physiological recording given to
``annotate``, its transcript and people's names to ``query``, and one query per labelled face
when the sample has per-face labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sovtp.data.sample import ManifestError, Sample


def sample_queries(
    prep: Any,
    sample: Sample,
    spec: Any,
    *,
    labels: Any = None,
    subject: str | int | None = "largest",
    root: Path | None = None,
) -> list[tuple[Any, list[Any]]]:
    """(Query, images) for ``sample`` through ``prep`` (a :class:`sovtp.prepare.Preparer`): one
    per labelled face when it has ``face_labels`` (as a run asks), one per face found under
    ``subject="all"``, else one for ``subject``.
    A sample the data layer refused raises its error."""
    from sovtp.data.sample import sampling_for
    from sovtp.engine.workers import speaker_names
    from sovtp.prompting.build import ImageCache

    if sample.error:
        raise ManifestError(sample.error)
    clip, frames = prep.annotate(
        sample.media,
        sampling_for(sample, prep.options.sampling),
        audio=sample.audio,
        sample=sample,
        root=root,
    )
    # the faces asked about, as a run's items are keyed: each labelled face; under --subject
    # all every face found (expand_faces); else none named (the subject rule decides)
    faces: list[int | None] = sorted(sample.face_labels)
    if not faces and subject == "all":
        faces = list(clip.track_ids)
    icache = ImageCache()
    out = []
    for f in faces or [None]:
        out.append(
            prep.query(
                clip,
                frames,
                spec,
                labels=labels,
                subject=f if f is not None else subject,
                transcript=sample.transcript,
                sample_key=sample.id,
                query_id=f"{sample.id}|{f or ''}|{spec.id}",
                image_cache=icache,
                names=speaker_names(sample),
            )
        )
    return out
