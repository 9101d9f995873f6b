"""The Decision record: what `tunewise advise` stores and what the decision page and the report render.

`tunewise advise` builds a `DecisionRecord` (its `Advice` is one) and writes `.to_store()` to the
Decision row's `facts` column; the row's `verdict`, `reasons` and `money` columns repeat the verdict,
the reasons and the ROI for queries. Readers call `DecisionRecord.from_store(row.facts)`.

    from tunewise.records.decision import DecisionRecord
    record = DecisionRecord.from_store(store.latest_decision().facts, where="decision dec-1")
    print(record.title, [r.text for r in record.reasons])

The money (`RoiResult` and its rows) is typed here too: `tunewise roi` returns the same types.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tunewise.records import Record

__all__ = ["SOURCES", "join_sources", "Fact", "Check", "Reason", "Migration", "OptionResult", "SensitivityRow",
           "RoiResult", "DecisionRecord"]

# The one vocabulary of sources, with the words the advice prints for each.
SOURCES = {"measured": "measured here", "projected": "projected", "answered": "answered", "catalog": "catalog",
           "assumed": "assumed"}


def join_sources(*sources: str) -> str:
    """`catalog+measured` from `measured`, `catalog`; 'unknown' when nothing was known."""
    parts = sorted({part for source in sources if source for part in source.split("+") if part in SOURCES})
    return "+".join(parts) or "unknown"


def source_label(source: str) -> str:
    """'measured here + catalog' for 'catalog+measured': the words a page prints."""
    return " + ".join(SOURCES.get(part, part) for part in source.split("+"))


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Fact(_Part):
    value: Any = Field(description="The figure or answer")
    source: str = Field(description="One of SOURCES, or several joined by '+' when derived from several")
    detail: str = Field("", description="Where it came from: the audit, evaluation, run, setting or answer")
    transfer: str = Field("", description="Set when it was measured on another model than the one it is applied to, saying so")


class Check(_Part):
    """One checklist step or signal: `answer` True/False/None (unknown); favourable means differ per list."""

    key: str
    question: str
    answer: bool | None
    evidence: str
    source: str


class Reason(_Part):
    text: str
    source: str


class Migration(_Part):
    """The way off a provider that closes fine-tuning within the plan's horizon."""

    provider: str
    closes: str
    source: str
    path: str
    steps: list[str]
    cost: str | None = Field(None, description="Why the migration is not priced, when it is not")
    budget_usd: float | None = None
    monthly_usd: float | None = None
    incremental_year1_usd: float | None = None
    basis: str | None = None


class OptionResult(_Part):
    name: str
    monthly_usd: float
    monthly_basis: str
    training_usd: float
    training_basis: str
    budget_usd: float
    budget_basis: str
    incremental_monthly_usd: float
    incremental_year1_usd: float
    quality: float | None
    gain: float | None
    benefit_year1_usd: float | None
    net_year1_usd: float | None
    break_even_month: int | None
    break_even_basis: str
    warnings: list[str] = Field(default_factory=list)


class SensitivityRow(_Part):
    input: str
    now: float
    low: float
    high: float
    net_at_low: float
    net_at_high: float
    flips: bool
    break_even_value: float | None


class RoiResult(_Part):
    baseline_monthly_usd: float
    baseline_basis: str
    options: list[OptionResult]
    best: OptionResult | None
    decision: str
    sensitivity: list[SensitivityRow]
    notes: list[str]
    months: int
    catalog_as_of: str

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class DecisionRecord(Record):
    """A verdict, the reasons behind it with their sources, the checklist and signals, the facts, the money."""

    KIND: ClassVar[str] = "decision"
    SCHEMA_VERSION: ClassVar[int] = 1

    verdict: str = Field(description="classic | prompt | retrieval | lora | full-sft | distill")
    title: str = Field(description="The verdict as a sentence")
    reasons: list[Reason]
    checklist: list[Check] = Field(description="The ROI guide's 7-step checklist")
    win_signals: list[Check]
    lose_signals: list[Check]
    facts: dict[str, Fact]
    unknowns: list[str] = Field(description="Questions nobody answered, to put in --answers")
    roi: RoiResult | None
    migration: Migration | None
    warnings: list[str]
    dataset_id: str | None = None
    evaluation_id: str | None = None
    as_of: str = Field(description="The day the advice was given (YYYY-MM-DD)")
