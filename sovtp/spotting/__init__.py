"""Micro-expression spotting: *when* in a long video does a face move briefly?

- :mod:`sovtp.spotting.flow` — the optical-flow baseline (MEGC MDMD-style): aligned face crops,
  flow against frames ``k`` back and ``k`` ahead over brow / eye / nose / mouth regions,
  stabilised by the nose root, peaks above ``mean + p·(max − mean)`` → intervals.
- :mod:`sovtp.spotting.parse` — a vision LLM's "when" answer (``prompts/spotting/when.yaml``)
  → intervals in the video's frame indices.
- :mod:`sovtp.recipes.spot` — ``sovtp spot``: either system over every long video of a dataset
  into a resumable run folder, scored and reported by the evaluator's interval metrics.

Both produce ``(start, end, label)`` spans that :mod:`sovtp.scoring.tasks` scores (interval F1,
STRS); ground truth comes from :mod:`sovtp.data.me_adapters`.
"""
