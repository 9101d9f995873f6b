"""The self-contained HTML page of one audit: `render/templates/audit.html`, charts as embedded PNG, no URLs.

    from tunewise.data.audit_html import write_audit_html
    write_audit_html(audit("train.jsonl"), "audit.html")

This module draws the charts and hands the typed record (`result.record`) and the per-row details
to the template; the page's wording and layout live in the template.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunewise.render import figure, png_bytes, render_page

ROWS_SHOWN = 50  # rows per detail table (the JSON output has every listed row)


def write_audit_html(result, path: str | Path) -> Path:
    """Write the audit `result` (tunewise.data.audit.AuditResult) as one HTML file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_audit_html(result), encoding="utf-8")
    return path


def render_audit_html(result) -> str:
    """The page as a string."""
    s = result.record
    charts = {
        "tokens": _token_histogram(np.asarray(result.token_lengths), s.tokens.context_limit),
        "labels": _bar_chart(list(s.labels.distribution), list(s.labels.distribution.values()), "Label distribution"),
        "duplicates": _cluster_sizes([len(c["lines"]) for c in result.duplicate_clusters]),
        "pii": _bar_chart(list(s.pii.by_type), list(s.pii.by_type.values()), "PII matches by type (training file)", "#c62828"),
    }
    return render_page("audit.html", title=f"Audit of {result.path.name}", result=result, s=s, charts=charts, shown=ROWS_SHOWN)


def _token_histogram(lengths: np.ndarray, context_limit: int | None) -> bytes | None:
    if not lengths.size:
        return None
    fig = figure()
    ax = fig.subplots()
    ax.hist(lengths, bins=min(60, max(5, int(np.sqrt(lengths.size)))), color="#1565c0")
    if context_limit and lengths.max() > 0.5 * context_limit:  # the limit line only where rows come near it
        ax.axvline(context_limit, color="#c62828", linestyle="--", label="context limit")
        ax.legend()
    ax.set_xlabel("tokens per example")
    ax.set_ylabel("examples")
    ax.set_title("Token length per example")
    return png_bytes(fig)


def _cluster_sizes(sizes: list[int]) -> bytes | None:
    if not sizes:
        return None
    counts = np.bincount(sizes)
    present = [n for n in range(len(counts)) if counts[n]]
    return _bar_chart([f"{n} rows" for n in present], [int(counts[n]) for n in present], "Duplicate clusters by size", "#6a1b9a")


def _bar_chart(labels: list[str], values: list[float], title: str, color: str = "#1565c0") -> bytes | None:
    if not labels:
        return None
    fig = figure(8, max(2.0, 0.3 * len(labels) + 0.8))
    ax = fig.subplots()
    positions = np.arange(len(labels))
    ax.barh(positions, values, color=color)
    ax.set_yticks(positions, labels=[label[:40] for label in labels])
    ax.invert_yaxis()
    ax.set_title(title)
    return png_bytes(fig)


__all__ = ["render_audit_html", "write_audit_html"]
