"""The audit summary, as `tunewise.data.audit.audit` writes it to `Audit.summary`.

    from tunewise.records.audit import AuditSummary
    summary = AuditSummary.from_store(store.latest_audit().summary, where="audit 1a2b")
    summary.readiness.level, summary.labels.agreement, summary.tokens.billable_per_epoch

Only the summary is stored; the per-row details (rows with PII, clusters, suspected labels) stay on
`tunewise.data.audit.AuditResult` and in `--json`. Every count here is complete, not capped.
Version 1 is the shape the audit wrote when records became typed (docs/CONTRACTS.md).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tunewise.records import Record

__all__ = ["AuditSummary", "ContaminationSummary", "CostEstimate", "DuplicateSummary", "LabelSummary", "PiiSummary",
           "Readiness", "TokenSummary"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenSummary(_Section):
    total: int = Field(description="Tokens of every readable training row, counted with `tokenizer`")
    billable_per_epoch: int = Field(description="Tokens one epoch is billed for: each row capped at the context limit")
    min: int = Field(description="Fewest tokens in one training row")
    median: float = Field(description="Median tokens per training row")
    p95: float = Field(description="95th percentile of tokens per training row")
    max: int = Field(description="Most tokens in one training row")
    over_limit: int = Field(description="Training rows longer than `context_limit` (0 when the limit is unknown)")
    context_limit: int | None = Field(description="The target model's context length in tokens; None when unknown")
    tokenizer: str = Field(description="Name of the tokenizer that counted")
    estimate: bool = Field(description="True when the counts are an estimate (not the target model's own tokenizer)")
    epochs: int = Field(description="Epochs the cost estimates assume")
    billable_all_epochs: int = Field(description="billable_per_epoch x epochs: what the cost estimates price")
    eval_total: int | None = Field(description="Tokens of the eval set; None without an eval set")


class PiiSummary(_Section):
    rows: int = Field(description="Training rows with at least one PII match")
    matches: int = Field(description="PII matches in the training file")
    by_type: dict[str, int] = Field(description="Training-file matches per PII type, most frequent first")
    eval_rows: int | None = Field(description="Eval rows with PII; None without an eval set")
    eval_by_type: dict[str, int] | None = Field(description="Eval-set matches per PII type; None without an eval set")


class DuplicateSummary(_Section):
    exact_clusters: int = Field(description="Groups of training rows with the same normalised input text")
    near_clusters: int = Field(description="Groups of near-duplicate training rows (Jaccard >= threshold)")
    rows_in_clusters: int = Field(description="Training rows that belong to any cluster")
    removable: int = Field(description="Rows deduplication drops (all but one per cluster)")
    exact_duplicate_rows: int = Field(description="Training rows whose input text is an exact copy of another row's")
    threshold: float = Field(description="Jaccard similarity of word 3-shingles from which rows count as near duplicates")
    method: str = Field(description="How near duplicates were found, in words")


class ContaminationSummary(_Section):
    hits: int = Field(description="(eval row, training row) pairs that are exact or near duplicates; 0 without an eval set")
    eval_rows_affected: int = Field(description="Eval rows that duplicate at least one training row")
    train_rows_affected: int = Field(description="Training rows that duplicate at least one eval row")
    exact: int = Field(description="Hits with the same normalised text")
    near: int = Field(description="Hits above the near-duplicate threshold only")


class LabelSummary(_Section):
    is_classification: bool = Field(description="True when the replies are a closed set of labels (label checks ran)")
    n_classes: int = Field(description="Distinct labels (0 when not classification)")
    task_type: str = Field(description="The detected task: classification | json | text (tunewise.data.task.detect_task)")
    task_reason: str = Field(description="Why that task type was detected, one readable line")
    distribution: dict[str, int] = Field(description="Rows per label, most frequent first (empty when not classification)")
    imbalance_ratio: float | None = Field(description="Largest class / smallest class; None when not classification")
    small_classes: list[str] = Field(description="Labels with fewer rows than the per-class minimum")
    conflicts: int = Field(description="Duplicate clusters whose rows carry different labels")
    suspected_mislabeled: int = Field(description="Rows confident learning flags as probably mislabeled")
    agreement: float | None = Field(description="Mean pairwise inter-annotator agreement; None without annotator labels")
    kappa: float | None = Field(description="Cohen's (2 annotators) or Fleiss' (3+) kappa; None without annotator labels")
    # The fields below are written only together with `agreement` (None otherwise).
    kappa_kind: Literal["cohen", "fleiss"] | None = Field(None, description="Which kappa `kappa` is")
    annotators: int | None = Field(None, description="Annotators compared")
    agreement_rows: int | None = Field(None, description="Rows labelled by two or more annotators")
    agreement_source: str | None = Field(None, description="File the annotator labels came from (training file or --annotations)")
    agreement_bar: float | None = Field(None, description="The agreement bar applied (data.thresholds.agreement_bar)")
    agreement_meets_bar: bool | None = Field(None, description="agreement >= agreement_bar")


class Readiness(_Section):
    level: Literal["coin-flip", "lora", "full-sft"] = Field(description="Band of the unique example count against the thresholds")
    verdict: str = Field(description="The readiness judgement as one readable line, naming the figures and bars")
    examples: int = Field(description="Unique examples: rows after dropping contaminated rows and all but one per duplicate cluster")
    rows: int | None = Field(description="Rows in the file the count came from (None when the caller did not say)")
    eval_rows: int | None = Field(description="Eval rows; None without an eval set")
    eval_ok: bool = Field(description="True when the eval set's size is within the thresholds' eval band")


class CostEstimate(_Section):
    model: str = Field(description="Catalog row (tunewise.pricing) priced")
    provider: str = Field(description="That row's provider")
    usd: float = Field(description="Training cost of billable_all_epochs tokens, USD")
    basis: str = Field(description="How the cost was computed, in words (price, tokenizer)")
    estimate: bool = Field(description="True unless the tokens were counted with that model's tokenizer and priced per token")


class AuditSummary(Record):
    """The `Audit.summary` JSON: what one audit of a training file (and its eval set) measured."""

    KIND: ClassVar[str] = "audit"
    SCHEMA_VERSION: ClassVar[int] = 1

    rows: int = Field(description="Readable training rows")
    rows_rejected: int = Field(description="Training rows that break a format rule")
    format_problems: int = Field(description="Rows breaking a format rule in both files together")
    format_problems_by_reason: dict[str, int] = Field(description="Rejected training rows per reason")
    format: str = Field(description="The training file's format as read (chat-jsonl, csv, ...)")
    eval_rows: int | None = Field(description="Readable eval rows; None without an eval set")
    eval_rows_rejected: int | None = Field(description="Eval rows that break a format rule; None without an eval set")
    tokens: TokenSummary = Field(description="Token counts and the context limit")
    pii: PiiSummary = Field(description="Personal data found")
    duplicates: DuplicateSummary = Field(description="Exact and near duplicates in the training file")
    contamination: ContaminationSummary = Field(description="Eval rows that duplicate training rows")
    labels: LabelSummary = Field(description="Label checks and annotator agreement")
    readiness: Readiness = Field(description="Unique examples and eval size against the thresholds")
    cost_estimates: list[CostEstimate] = Field(description="Training cost per priced catalog row, cheapest first")
    notes: list[str] = Field(description="What the readers decided on the way (encoding fallback, columns used)")
