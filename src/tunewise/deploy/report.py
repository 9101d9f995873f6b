"""The report's deployment section: traffic over time, per-variant quality with intervals, alerts, decision trail.

`tunewise report` adds one section per deployment in the store (`--deployment NAME` for one); the numbers
are `deploy.monitor.deployment_status`'s, the trail is the deployment's append-only events.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from tunewise.render.sections import Section, Table


def deployment_section(store, name: str) -> Section:
    from tunewise.deploy.monitor import deployment_status
    from tunewise.deploy.state import load

    loaded = load(name, store=store)
    rows = store.request_logs(loaded.record.id)
    section = Section(f"Deployment {loaded.name}")
    section.text(f"Now: {loaded.state.summary()} (version {loaded.version}).")
    if not rows:
        section.note("No request logged yet: serve it with `tunewise serve --deployment " + loaded.name + "`.")
    else:
        status = deployment_status(loaded.name, since=rows[0].created_at, store=store)
        section.subtitle("Per variant, since the first logged request")
        section.table(variants_table(status))
        if status.verdicts:
            section.bullets(list(status.verdicts))
        section.subtitle("Traffic over time")
        section.table(traffic_table(rows, [v.name for v in loaded.state.variants()]))
    alerts = store.alerts(loaded.record.id)
    section.subtitle("Alerts")
    if alerts:
        section.table(Table(["when (UTC)", "rule", "variant", "value", "threshold", "message", "webhook"],
                            [[f"{a.created_at:%Y-%m-%d %H:%M}", a.rule, a.variant or "", _num(a.value), _num(a.threshold), a.message,
                              {True: "delivered", False: f"failed: {a.delivery_error or ''}", None: "none set"}[a.delivered]]
                             for a in alerts]))
    else:
        section.note("No alert rule has fired.")
    section.subtitle("Decision trail")
    section.table(Table(["version", "when (UTC)", "who", "change", "why", "evaluation"],
                        [[str(e.version), f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.reason or "", e.evaluation_id or ""]
                         for e in store.deployment_events(loaded.record.id)], numeric=frozenset({0})))
    return section


def variants_table(status) -> Table:
    from tunewise.deploy.monitor import latency_interval

    rows = []
    for v in status.variants:
        quality = "n/a" if v.quality is None else f"{v.quality:.3f} ({v.quality_low:.3f}–{v.quality_high:.3f}, n={v.feedback})"
        rows.append([v.name, v.spec, str(v.requests), f"{v.error_rate:.1%}", _num(v.p50_ms, "{:.0f}"), latency_interval(v),
                     _num(v.p95_ms, "{:.0f}"), _num(v.cost_per_1k_usd, "${:.4f}"), quality, _num(v.drift)])
    return Table(["variant", "spec", "requests", "errors", "p50 ms", "p50 95% CI", "p95 ms", "cost / 1k", "quality (95% CI)", "drift (JS)"],
                 rows, numeric=frozenset({2, 3, 4, 5, 6, 7}))


def traffic_table(rows, names: list[str]) -> Table:
    """Requests per variant per hour (per minute when everything happened within two hours)."""
    first, last = rows[0].created_at, rows[-1].created_at
    fmt = "%Y-%m-%d %H:%M" if (last - first).total_seconds() <= 7200 else "%Y-%m-%d %H:00"
    counts: dict[str, Counter] = {}
    for row in rows:
        counts.setdefault(_at(row.created_at, fmt), Counter())[row.variant] += 1
    seen = [n for n in names if any(c[n] for c in counts.values())] + sorted({v for c in counts.values() for v in c} - set(names))
    return Table(["time (UTC)", *seen, "total"], [[when, *(str(c[n]) for n in seen), str(sum(c.values()))] for when, c in counts.items()],
                 numeric=frozenset(range(1, len(seen) + 2)))


def _at(moment: datetime, fmt: str) -> str:
    return moment.strftime(fmt)


def _num(value, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


__all__ = ["deployment_section"]
