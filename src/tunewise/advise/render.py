"""The decision as Markdown and as an HTML fragment, from the typed record and the render package's templates.

    from tunewise.advise.render import decision_section
    markdown, html = decision_section(store)     # the latest stored decision, for `tunewise report`

The templates are `render/templates/decision.md` and `decision.html` (the fragment the evaluation
report includes); `decision_page.html` wraps the fragment as a standalone page.
"""

from __future__ import annotations

from typing import Any

from tunewise.errors import StoreError
from tunewise.records.decision import DecisionRecord, source_label
from tunewise.render import fmt_usd, render_page

__all__ = ["render_markdown", "render_html", "render_page_html", "decision_section"]


def _mark(answer: bool | None) -> str:
    return {True: "yes", False: "no"}.get(answer, "unknown")


def _context(record: DecisionRecord | None, **extra: Any) -> dict[str, Any]:
    return {"record": record, "label": source_label, "mark": _mark, "usd": fmt_usd, "verdict": None, "note": "", **extra}


def render_markdown(record: DecisionRecord) -> str:
    return render_page("decision.md", **_context(record))


def render_html(record: DecisionRecord) -> str:
    """The same content as the Markdown, as an HTML fragment for the report."""
    return render_page("decision.html", **_context(record))


def render_page_html(record: DecisionRecord) -> str:
    """A standalone page of the decision (the fragment inside the shared base page)."""
    return render_page("decision_page.html", title=f"Decision: {record.title}", **_context(record))


def decision_section(store) -> tuple[str, str]:
    """(markdown, html) of the latest stored decision, for `tunewise report`; a short note when there is none
    or when it was stored before decisions were typed."""
    decision = store.latest_decision()
    if decision is None:
        note = "No decision yet: run `tunewise advise`."
        return _note(None, note)
    try:
        record = DecisionRecord.from_store(decision.facts, where=f"decision {decision.id}")
    except StoreError as exc:
        return _note(decision.verdict, f"{exc}; run `tunewise advise` again to store it in the current shape.")
    return render_markdown(record), render_html(record)


def _note(verdict: str | None, note: str) -> tuple[str, str]:
    context = _context(None, verdict=verdict, note=note)
    return render_page("decision.md", **context), render_page("decision.html", **context)
