"""What an evaluation stores: `Evaluation.results` of a comparison or a learning curve, and its per-row outputs.

    from tunewise.records.evaluation import EvaluationResults
    results = EvaluationResults.from_store(evaluation.results, where=f"evaluation {evaluation.id}")
    best = results.best_candidate()

`evaluate()` (evaluate/run.py) writes `EvaluationResults` for evaluations of kind `compare` and
`curve-point`; `learning_curve()` (evaluate/curve.py) writes `CurveResults` for kind `curve`;
`import_review()` (evaluate/review.py) adds `human_review` to an `EvaluationResults`. The per-row
replies go to `outputs.jsonl` beside the evaluation, one `OutputRow` a line; they are versioned with
the evaluation whose `outputs_path` names them. Every field here is one production writes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tunewise.records import Record

__all__ = [
    "MetricValue", "Comparison", "Operations", "ClassScores", "Confusion", "Details", "CandidateResult",
    "Contamination", "RatingSummary", "HumanReview", "EvaluationResults", "CurveFit", "CurveResults",
    "RowOutput", "OutputRow",
]


class _Part(BaseModel):
    """A piece of a record: unknown fields are an error, so a misspelt writer fails its test."""

    model_config = ConfigDict(extra="forbid")


class MetricValue(_Part):
    value: float = Field(description="The metric over all eval rows (0-1 for every built-in metric).")
    low: float | None = Field(None, description="Lower end of the bootstrap interval at the evaluation's `confidence`.")
    high: float | None = Field(None, description="Upper end of the bootstrap interval at the evaluation's `confidence`.")


class Comparison(_Part):
    """A candidate against the baseline on the same rows (paired)."""

    vs: str = Field(description="Name of the baseline candidate.")
    metric: str = Field(description="The primary metric compared.")
    diff: float = Field(description="Candidate minus baseline on the primary metric.")
    low: float = Field(description="Lower end of the paired bootstrap interval of `diff`.")
    high: float = Field(description="Upper end of the paired bootstrap interval of `diff`.")
    p_value: float = Field(description="p-value of `test`.")
    test: Literal["mcnemar-exact", "paired-bootstrap"] = Field(description="The paired test behind `p_value`.")
    significant: bool = Field(description="p_value < EvalConfig.alpha.")


class Operations(_Part):
    """What a candidate costs to run: time, tokens, dollars, and how each was measured (`cost_basis`)."""

    latency_p50_ms: float | None = Field(
        None, description="Median latency of one request, measured request by request (endpoints, the classic classifier); "
        "None where requests ran batched (local models: see amortized_ms_per_request).")
    latency_p95_ms: float | None = Field(None, description="95th percentile of the same per-request latencies.")
    amortized_ms_per_request: float | None = Field(
        None, description="Wall time of all requests divided by their number, for local models that run them batched: "
        "throughput, not the latency one user waits.")
    tokens_in_mean: float | None = Field(None, description="Mean prompt tokens per request (None where unknown).")
    tokens_out_mean: float | None = Field(None, description="Mean generated tokens per request (None where unknown).")
    requests_per_second: float | None = Field(None, description="Requests over wall time of the whole candidate.")
    cost_per_1k_usd: float | None = Field(None, description="Dollars per 1,000 requests: hardware time for local candidates, "
                                          "catalog prices for endpoints; None when no price is known.")
    cost_basis: str = Field(description="How time and cost were measured, in words, for the report.")


class ClassScores(_Part):
    precision: float = Field(description="Precision of this label.")
    recall: float = Field(description="Recall of this label.")
    f1: float = Field(description="F1 of this label.")
    support: int = Field(description="Eval rows whose reference is this label.")


class Confusion(_Part):
    labels: list[str] = Field(description="Row labels: the references.")
    columns: list[str] = Field(description="Column labels: the labels, then '(no label)' for replies that named none.")
    matrix: list[list[int]] = Field(description="Counts, one row per reference label, one column per `columns` entry.")


class Details(_Part):
    """Counts beyond the metrics; which appear depends on the task type."""

    empty: int = Field(description="Rows with an empty reply.")
    refused: int = Field(description="Rows whose reply reads as a refusal.")
    per_class: dict[str, ClassScores] | None = Field(None, description="Classification: scores per label.")
    confusion: Confusion | None = Field(None, description="Classification: the confusion matrix.")
    unparsed: int | None = Field(None, description="Classification: replies that named no label.")
    invalid_json: int | None = Field(None, description="JSON tasks: replies that do not parse as JSON.")


class CandidateResult(_Part):
    """One candidate of a comparison: what it is, whether it ran, its scores, its cost, its comparison."""

    name: str = Field(description="Unique name in this evaluation (the spec with its options, e.g. 'few-shot:smollm2-135m?k=8').")
    spec: str = Field(description="The spec as given on the command line.")
    kind: Literal["zero-shot", "few-shot", "knn-few-shot", "adapter", "endpoint", "classic"] = Field(description="Kind of candidate.")
    run_id: str | None = Field(None, description="The training run of an adapter candidate found in the store.")
    status: Literal["completed", "failed"] = Field(description="'failed' when it could not produce replies (see `error`).")
    error: str | None = Field(None, description="Why a failed candidate failed.")
    decoding: Literal["free", "constrained"] | None = Field(None, description="Local models only: how replies were decoded.")
    metrics: dict[str, MetricValue] = Field(default_factory=dict, description="Every metric by name; empty when failed.")
    details: Details | None = Field(None, description="Counts beyond the metrics; None when failed.")
    operations: Operations | None = Field(None, description="Time, tokens and cost; None when failed.")
    comparison: Comparison | None = Field(None, description="Against the baseline; None for the baseline itself and failed candidates.")

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def metric(self, name: str) -> MetricValue | None:
        return self.metrics.get(name)


class Contamination(_Part):
    hits: int = Field(description="Eval/train pairs found to be duplicates or near duplicates.")
    eval_rows_affected: int = Field(description="Eval rows in at least one such pair.")
    eval_lines: list[int] = Field(default_factory=list, description="Their line numbers in the eval file (the first 50).")


class RatingSummary(_Part):
    scale: Literal["1-5", "win-rate"] = Field(description="'1-5' (mean rating) or 'win-rate' (win 1, tie 0.5, lose 0).")
    mean: float = Field(description="Mean of the ratings.")
    low: float = Field(description="Lower end of the bootstrap interval at the evaluation's confidence.")
    high: float = Field(description="Upper end of the bootstrap interval.")
    n: int = Field(description="Rows rated for this candidate.")


class HumanReview(_Part):
    """People's ratings imported from a review CSV (`tunewise eval import-review`)."""

    file: str = Field(description="The CSV imported, as an absolute path.")
    imported_at: str = Field(description="When, ISO 8601 UTC.")
    rows_rated: int = Field(description="Rows with at least one rating.")
    confidence: float = Field(description="Confidence level of the intervals.")
    candidates: dict[str, RatingSummary] = Field(description="Per candidate name with at least one rating.")


class EvaluationResults(Record):
    """`Evaluation.results` of a comparison (`tunewise eval`, kinds `compare` and `curve-point`)."""

    KIND = "evaluation-results"
    SCHEMA_VERSION = 1

    task_type: Literal["classification", "json", "text"] = Field(description="The task detected or given.")
    primary_metric: str = Field(description="The metric the verdict and comparisons use.")
    labels: list[str] = Field(default_factory=list, description="Classification: the label set (empty for other tasks).")
    json_schema: dict | None = Field(None, description="JSON tasks: the JSON Schema replies were checked against.")
    baseline: str | None = Field(None, description="Name of the candidate every other is compared with.")
    verdict: str = Field(description="One sentence: the headline comparison.")
    verdicts: dict[str, str] = Field(default_factory=dict, description="One sentence per compared candidate name.")
    candidates: list[CandidateResult] = Field(description="Every candidate, in the order given (the baseline last if added).")
    confidence: float = Field(description="Confidence level of every interval (EvalConfig.confidence).")
    bootstrap_samples: int = Field(description="Bootstrap resamples behind the intervals.")
    eval_path: str = Field(description="The eval file.")
    train_path: str | None = Field(None, description="The training file, when given.")
    rows: int = Field(description="Eval rows scored.")
    limit: int | None = Field(None, description="Only the first `limit` rows were scored (EvalConfig.limit).")
    contamination: Contamination | None = Field(None, description="Overlap with the training set; None without one.")
    hardware: str = Field(description="Hardware that local candidates ran on and its hourly price.")
    evaluation_id: str | None = Field(None, description="The evaluation's id in the store.")
    outputs_path: str | None = Field(None, description="The per-row outputs (JSONL of OutputRow).")
    human_review: HumanReview | None = Field(None, description="People's ratings, once imported.")

    def completed(self) -> list[CandidateResult]:
        return [c for c in self.candidates if c.completed]

    def candidate(self, ref: str) -> CandidateResult | None:
        """A candidate by name or spec."""
        return next((c for c in self.candidates if ref in (c.name, c.spec)), None)

    def best_candidate(self) -> CandidateResult | None:
        """The completed candidate with the highest primary metric (the first of equals)."""
        scored = [c for c in self.completed() if c.metric(self.primary_metric) is not None]
        return max(scored, key=lambda c: c.metrics[self.primary_metric].value) if scored else None


class CurveFit(_Part):
    model: Literal["exponential", "power", "log-linear"] = Field(description="The curve fitted.")
    formula: str = Field(description="Its formula in n (training examples).")
    params: dict[str, float] = Field(description="Its parameters (a, b and, for saturating fits, c) in per-example units.")
    asymptote: float | None = Field(None, description="The plateau of a saturating fit; None for log-linear.")
    note: str | None = Field(None, description="Why the fit is rough or why log-linear was used.")
    sse: float = Field(description="Sum of squared residuals.")
    r2: float | None = Field(None, description="R²; None when the scores do not vary.")


class CurveResults(Record):
    """`Evaluation.results` of a learning curve (`tunewise eval curve`, kind `curve`)."""

    KIND = "curve-results"
    SCHEMA_VERSION = 1

    metric: str = Field(description="The primary metric of the point evaluations.")
    sizes: list[int] = Field(description="Training-set sizes, ascending.")
    scores: list[float] = Field(description="The metric at each size.")
    low: list[float | None] = Field(description="Lower interval end at each size.")
    high: list[float | None] = Field(description="Upper interval end at each size.")
    confidence: float | None = Field(description="Confidence level of the intervals; None in curves stored before records were typed, which did not record it.")
    fit: CurveFit = Field(description="The curve fitted to (size, score).")
    projected_gain_doubling: float = Field(description="Fitted score at twice the largest size minus at the largest.")
    projected_score_doubling: float = Field(description="Fitted score at twice the largest size.")
    run_ids: list[str] = Field(description="The training run of each size.")
    evaluation_ids: list[str | None] = Field(description="The point evaluation (kind `curve-point`) of each size.")
    limit: int | None = Field(None, description="Only the first `limit` eval rows were scored.")
    statement: str = Field(description="One sentence: the projected gain from doubling the data.")
    evaluation_id: str | None = Field(None, description="The curve's id in the store.")
    plot_path: str | None = Field(None, description="The PNG of the curve.")


class RowOutput(_Part):
    """One candidate's reply to one eval row and how it scored; which score fields appear depends on the task."""

    output: str = Field(description="The reply as generated.")
    empty: bool = Field(description="The reply is empty.")
    refused: bool = Field(description="The reply reads as a refusal.")
    correct: bool | None = Field(None, description="Classification and JSON: the row is right on the primary metric.")
    prediction: str | None = Field(None, description="Classification: the label read from the reply, None when it names none.")
    score: float | None = Field(None, description="JSON: field accuracy; text: ROUGE-L of the row.")
    valid_json: bool | None = Field(None, description="JSON: the reply parses.")
    schema_errors: list[str] | None = Field(None, description="JSON with a schema: the first schema violations.")
    judge: float | None = Field(None, description="Free text with a judge: the judge's score, 0-1.")
    latency_ms: float | None = Field(None, description="Measured latency of this request; None where it ran batched.")
    tokens_in: int | None = Field(None, description="Prompt tokens, where known.")
    tokens_out: int | None = Field(None, description="Generated tokens, where known.")

    @property
    def row_score(self) -> float | None:
        """This row's primary score: 1/0 where it is right or wrong, else the graded score."""
        if self.correct is not None:
            return 1.0 if self.correct else 0.0
        return self.score


class OutputRow(_Part):
    """One line of `outputs.jsonl`: an eval row and every completed candidate's reply to it."""

    index: int = Field(description="Position in the eval rows scored (0-based).")
    line: int = Field(description="Line number in the eval file.")
    input: str = Field(description="The row's request text.")
    reference: str | None = Field(None, description="The reference reply (the final assistant turn).")
    candidates: dict[str, RowOutput] = Field(description="Per candidate name.")
