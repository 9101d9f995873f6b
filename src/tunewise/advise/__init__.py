"""Decide: should this team fine-tune at all? The ROI guide's checklist, signals and ROI model, from measured facts.

    from tunewise.advise import advise, roi, RoiInputs, FineTuneOption, decision_section

Names are imported lazily: `tunewise.config` imports `tunewise.advise.config` and must not pull the
store or the catalog in with it.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "advise": "tunewise.advise.decide",
    "Advice": "tunewise.advise.decide",
    "Answers": "tunewise.advise.decide",
    "load_answers": "tunewise.advise.decide",
    "decision_section": "tunewise.advise.decide",
    "VERDICTS": "tunewise.advise.decide",
    "DecisionRecord": "tunewise.records.decision",
    "roi": "tunewise.advise.roi",
    "RoiInputs": "tunewise.advise.roi",
    "RoiResult": "tunewise.advise.roi",
    "FineTuneOption": "tunewise.advise.roi",
    "load_roi_inputs": "tunewise.advise.roi",
    "quality_from_evaluation": "tunewise.advise.roi",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tunewise.advise' has no attribute {name!r}")
