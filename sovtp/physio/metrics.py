"""Valence / arousal regression metrics — where they live for physiology users.

The ``regression`` task is one of the scoring tasks (:mod:`sovtp.scoring.tasks` holds CCC,
Pearson's r, RMSE and the high/low bins; :mod:`sovtp.scoring.registry` holds
:class:`RegressionData` and registers ``ccc``, ``pcc``, ``rmse``, their ``_<dim>`` forms and
``high_low_accuracy`` / ``high_low_f1``).  This module re-exports them so that physiology code
and notebooks need one import.  A missing prediction (NaN: an invalid answer) becomes the
scale's midpoint — the uninformative answer — so it can only cost.
"""

from __future__ import annotations

from sovtp.scoring.registry import REGRESSION_DIMS as DIMS
from sovtp.scoring.registry import RegressionData
from sovtp.scoring.tasks import ccc, high_low_labels, pcc, rmse

TASK = "regression"

__all__ = ["DIMS", "TASK", "RegressionData", "ccc", "high_low_labels", "pcc", "rmse"]
