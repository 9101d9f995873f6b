"""A self-contained HTML page for one audit: inline CSS, charts as embedded PNG (matplotlib Agg), no URLs.

    from tunewise.data.audit_html import write_audit_html
    write_audit_html(audit("train.jsonl"), "audit.html")
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

ROWS_SHOWN = 50

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem;width:100%}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.blocking{background:#fdecea;border-left:4px solid #c62828;padding:.5rem 1rem}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.5rem 1rem}
.verdict{background:#fff8e1;border-left:4px solid #f9a825;padding:.5rem 1rem;font-weight:600}
.muted{color:#666;font-size:.85rem}img{max-width:100%}
code{background:#f4f4f4;padding:0 .2rem}
"""


def write_audit_html(result, path: str | Path) -> Path:
    """Write the audit `result` (tunewise.data.audit.AuditResult) as one HTML file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_audit_html(result), encoding="utf-8")
    return path


def render_audit_html(result) -> str:
    """The page as a string."""
    s = result.summary
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Audit of {e(result.path.name)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Data audit: {e(result.path.name)}</h1>",
             f"<p class='muted'>{e(str(result.path))}" + (f" · eval {e(str(result.eval_path))}" if result.eval_path else "")
             + (f" · audit {e(result.audit_id)}" if result.audit_id else "") + f" · tokenizer {e(s['tokens']['tokenizer'])}</p>"]
    if result.blocking:
        parts.append("<div class='blocking'><b>Blocking problems</b><ul>" + "".join(f"<li>{e(b)}</li>" for b in result.blocking) + "</ul></div>")
    else:
        parts.append("<div class='ok'>No blocking problems.</div>")
    parts.append(f"<h2>Readiness</h2><div class='verdict'>{e(s['readiness']['verdict'])}</div>")
    parts.append(_overview(s))
    parts.append(_tokens(result))
    parts.append(_labels(result))
    parts.append(_duplicates(result))
    parts.append(_pii(result))
    parts.append(_contamination(result))
    parts.append(_format(result))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{e(_fmt(v))}</td>" if i in numeric else f"<td>{e(_fmt(v))}</td>" for i, v in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}'>"


def _figure(width: float = 8, height: float = 3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _bar_chart(labels: list[str], values: list[float], title: str, color: str = "#1565c0") -> str:
    if not labels:
        return ""
    fig, ax = _figure(8, max(2.0, 0.3 * len(labels) + 0.8))
    positions = np.arange(len(labels))
    ax.barh(positions, values, color=color)
    ax.set_yticks(positions, labels=[label[:40] for label in labels])
    ax.invert_yaxis()
    ax.set_title(title)
    return _png(fig)


def _overview(s: dict) -> str:
    pii, dup, con, lab = s["pii"], s["duplicates"], s["contamination"], s["labels"]
    rows = [
        ["readable rows", s["rows"]], ["rejected rows (format)", s["rows_rejected"]],
        ["eval rows", s["eval_rows"]], ["rows with PII", pii["rows"]],
        ["duplicate clusters (exact / near)", f"{dup['exact_clusters']:,} / {dup['near_clusters']:,}"],
        ["rows removable by dedup", dup["removable"]],
        ["eval rows seen in training", con["eval_rows_affected"]],
        ["suspected wrong labels", lab.get("suspected_mislabeled")],
        ["annotator agreement / kappa", "" if lab.get("agreement") is None else f"{lab['agreement']:.1%} / {lab['kappa']:.3f}"],
    ]
    costs = [[c["model"], c["provider"], f"${c['usd']:,.2f}", ("estimate; " if c.get("estimate") else "") + c["basis"]]
             for c in s["cost_estimates"]]
    return ("<h2>Overview</h2>" + _table(["check", "result"], rows, {1})
            + f"<h2>Training cost per run ({s['tokens']['epochs']} epochs x {s['tokens']['billable_per_epoch']:,} tokens)</h2>"
            + _table(["model", "provider", "cost", "basis"], costs))


def _tokens(result) -> str:
    t = result.summary["tokens"]
    chart = ""
    lengths = np.asarray(result.token_lengths)
    if lengths.size:
        fig, ax = _figure()
        ax.hist(lengths, bins=min(60, max(5, int(np.sqrt(lengths.size)))), color="#1565c0")
        if t["context_limit"] and lengths.max() > 0.5 * t["context_limit"]:
            ax.axvline(t["context_limit"], color="#c62828", linestyle="--", label="context limit")
            ax.legend()
        ax.set_xlabel("tokens per example")
        ax.set_ylabel("examples")
        ax.set_title("Token length per example")
        chart = _png(fig)
    stats = _table(["total", "min", "median", "p95", "max", "over limit", "limit", "estimate"],
                   [[t["total"], t["min"], t["median"], t["p95"], t["max"], t["over_limit"], t["context_limit"], "yes" if t["estimate"] else "no"]],
                   set(range(7)))
    over = _table(["line", "tokens"], [[o["line"], o["tokens"]] for o in result.over_limit[:ROWS_SHOWN]], {0, 1}) if result.over_limit else ""
    return f"<h2>Tokens</h2>{stats}{chart}{over}"


def _labels(result) -> str:
    lab = result.summary["labels"]
    if not lab["is_classification"]:
        out = "<h2>Labels</h2><p>The replies are not a closed set of labels: distribution and mislabel checks skipped.</p>"
    else:
        dist = lab["distribution"]
        out = ("<h2>Labels</h2>" + _bar_chart(list(dist), list(dist.values()), "Label distribution")
               + f"<p>{lab['n_classes']} classes, imbalance ratio {lab['imbalance_ratio']:g}"
               + (f"; classes with too few rows: {html.escape(', '.join(lab['small_classes']))}" if lab["small_classes"] else "") + "</p>")
        if result.mislabels:
            out += (f"<h3>Suspected wrong labels ({len(result.mislabels):,}, confident learning)</h3>"
                    + _table(["line", "given", "suggested", "confidence", "text"],
                             [[m["line"], m["given"], m["suggested"], m["confidence"], m["text"]] for m in result.mislabels[:ROWS_SHOWN]], {0, 3}))
        if result.conflicts:
            out += "<h3>Conflicting labels on duplicate inputs</h3>" + _table(
                ["lines", "labels"], [[c["lines"], c["labels"]] for c in result.conflicts[:ROWS_SHOWN]])
    if result.agreement:
        a = result.agreement
        out += (f"<h3>Inter-annotator agreement</h3><p>{a['annotators']} annotators on {a['rows']:,} rows "
                f"({html.escape(str(a['source']))}): mean pairwise {a['mean_pairwise']:.1%} "
                f"({'meets' if a['meets_bar'] else 'is below'} the fine-tuning guide's 85% agreement bar), {a['kappa_kind']} kappa {a['kappa']:.3f}</p>"
                + _table(["pair", "agreement"], [[k, v] for k, v in a["pairwise"].items()], {1}))
    return out


def _duplicates(result) -> str:
    d = result.summary["duplicates"]
    clusters = result.duplicate_clusters
    chart = ""
    if clusters:
        sizes = np.bincount([len(c["lines"]) for c in clusters])
        labels = [str(n) for n in range(len(sizes)) if sizes[n]]
        chart = _bar_chart([f"{n} rows" for n in labels], [int(sizes[int(n)]) for n in labels], "Duplicate clusters by size", "#6a1b9a")
    rows = [[c["kind"], c["lines"][:10], " ‖ ".join(c["texts"][:2])] for c in clusters[:ROWS_SHOWN]]
    return (f"<h2>Duplicates</h2><p>{html.escape(d['method'])}: {d['exact_clusters']:,} exact and {d['near_clusters']:,} near "
            f"clusters, {d['rows_in_clusters']:,} rows in clusters, {d['removable']:,} removable (keeping one per cluster).</p>"
            + chart + (_table(["kind", "lines", "texts"], rows) if rows else ""))


def _pii(result) -> str:
    p = result.summary["pii"]
    chart = _bar_chart(list(p["by_type"]), list(p["by_type"].values()), "PII matches by type (training file)", "#c62828")
    rows = [[r["file"], r["line"], r["types"], "; ".join(m["text"] for m in r["matches"])] for r in result.pii[:ROWS_SHOWN]]
    return (f"<h2>PII</h2><p>{p['rows']:,} training rows with {p['matches']:,} matches"
            + (f"; {p['eval_rows']:,} eval rows" if p.get("eval_rows") is not None else "")
            + ". <code>tunewise data clean --redact-pii</code> replaces each with a typed placeholder.</p>"
            + chart + (_table(["file", "line", "types", "found"], rows, {1}) if rows else ""))


def _contamination(result) -> str:
    c = result.summary["contamination"]
    if result.eval_path is None:
        return "<h2>Contamination</h2><p>No eval set given.</p>"
    rows = [[h["eval_line"], h["train_line"], h["score"], h["kind"], h["eval_text"]] for h in result.contamination[:ROWS_SHOWN]]
    return (f"<h2>Contamination</h2><p>{c['eval_rows_affected']:,} eval rows exactly or nearly duplicate {c['train_rows_affected']:,} "
            "training rows (blocking: the eval score would be inflated).</p>"
            + (_table(["eval line", "train line", "Jaccard", "kind", "eval text"], rows, {0, 1, 2}) if rows else ""))


def _format(result) -> str:
    rows = [[p["file"], p["line"], p["reason"]] for p in result.format_problems[:ROWS_SHOWN]]
    return (f"<h2>Format</h2><p>{result.summary['format_problems']:,} rows break a format rule.</p>"
            + (_table(["file", "line", "reason"], rows, {1}) if rows else ""))


__all__ = ["render_audit_html", "write_audit_html"]
