"""Distillation: a teacher labels unlabeled inputs, agreement and people filter them, a small student learns from the rest.

    from tunewise.distill import label_rows, export_queue, import_decisions
    result = label_rows("unlabeled.csv", teacher="endpoint:https://api.example/v1#big-model", text_column="body",
                        out_dir="distilled/", budget_usd=20, yes=True)
    export_queue("distilled/", "review/")                       # review.csv + review.html of the unsure rows
    import_decisions("distilled/", "review/review.csv")         # accepted.jsonl rewritten and registered

`label` (sampling, agreement, budget, resume, a deployment's traffic as input), `review` (the queue people
decide on), `vary` (paraphrases of under-represented labels, deduplicated, then labelled) and `teacher` (one
HTTP path for endpoints and local specs).
"""

from tunewise.distill.label import Labeled, label_rows
from tunewise.distill.review import Applied, export_queue, import_decisions
from tunewise.distill.vary import Varied, vary_rows

__all__ = ["Applied", "Labeled", "Varied", "export_queue", "import_decisions", "label_rows", "vary_rows"]
