"""Is the data ready to fine-tune on? The unique example count and the eval-set size against `Thresholds`.

    from tunewise.data.readiness import readiness_verdict
    readiness_verdict(7_200, 800).level  # "lora"

The audit judges its own counts; `tunewise advise` judges again when a cleaned dataset or a training
run counted the examples differently.
"""

from __future__ import annotations

from tunewise.data.config import Thresholds
from tunewise.records.audit import Readiness


def unique_examples(rows: int, clusters, contaminated: set[int]) -> int:
    """The rows `tunewise data clean --dedup --drop-contaminated` keeps: contaminated rows go, then one row per cluster.

    Example: `unique_examples(10, [[0, 1, 2]], {5})` -> 7
    """
    kept_in_clusters = sum(max(0, sum(i not in contaminated for i in cluster) - 1) for cluster in clusters)
    return rows - len(contaminated) - kept_in_clusters


def readiness_verdict(examples: int, eval_rows: int | None, *, agreement: float | None = None,
                      rows: int | None = None, thresholds: Thresholds | None = None) -> Readiness:
    """The unique example count (after dedup and decontamination) and eval-set size against the fine-tuning guide's thresholds.

    `rows` is the file's row count, said beside the unique count when they differ; `thresholds`
    default to `Thresholds()` (pass `load_config().data.thresholds` to honour the workspace's).

    Example: `readiness_verdict(7_200, 800).level` -> "lora"
    """
    bars = thresholds or Thresholds()
    count = f"{examples:,} unique examples" + (f" ({rows:,} rows in the file)" if rows is not None and rows != examples else "")
    band = f"{bars.eval_min:,}-{bars.eval_max:,}"
    if examples < bars.coin_flip_below:
        level = "coin-flip"
        line = (f"{count}: below {bars.coin_flip_below:,}, a fine-tune is a coin flip ('Sub-5k SFT is a coin "
                f"flip at best'); keep prompting, or collect or distill more data")
    elif examples < bars.full_sft_from:
        level = "lora"
        line = f"{count}: {bars.coin_flip_below:,}-{bars.full_sft_from:,} is LoRA territory ('might work'); full SFT often hurts here"
    else:
        level = "full-sft"
        line = f"{count}: {bars.full_sft_from:,}+ is where full SFT reliably pays off"
    if eval_rows is None:
        line += f"; no eval set given (hold out {band} rows: `tunewise data split`)"
    elif eval_rows < bars.eval_min:
        line += f"; eval set of {eval_rows:,} rows is below the {band} the fine-tuning guide asks for"
    elif eval_rows > bars.eval_max:
        line += f"; eval set of {eval_rows:,} rows is above {bars.eval_max:,} (more than needed; those rows could train)"
    else:
        line += f"; eval set of {eval_rows:,} rows is within {band}"
    if agreement is not None:
        bar = bars.agreement_bar
        line += (f"; annotator agreement {agreement:.0%} meets the {bar:.0%} bar" if agreement >= bar
                 else f"; annotator agreement {agreement:.0%} is below the {bar:.0%} bar: fix the labels first")
    return Readiness(level=level, verdict=line, examples=examples, rows=rows, eval_rows=eval_rows,
                     eval_ok=eval_rows is not None and bars.eval_min <= eval_rows <= bars.eval_max)


__all__ = ["readiness_verdict", "unique_examples"]
