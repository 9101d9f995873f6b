"""Distillation: a teacher labels unlabeled inputs, agreement filters them, a small student learns from the rest.

    from tunewise.distill import label_rows
    result = label_rows("unlabeled.csv", teacher="endpoint:https://api.example/v1#big-model", text_column="body",
                        out_dir="distilled/", budget_usd=20, yes=True)

`label` (sampling, agreement, budget, resume) and `teacher` (one HTTP path for endpoints and local specs).
"""

from tunewise.distill.label import Labeled, label_rows

__all__ = ["Labeled", "label_rows"]
