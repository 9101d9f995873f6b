"""`tunewise report` on a workspace with a deployment: traffic over time, quality per variant, alerts, the trail."""

from __future__ import annotations

import pytest

from tunewise.deploy.state import create_deployment, set_deployment
from tunewise.errors import EvaluationError
from tunewise.evaluate.report import write_report
from tunewise.store import Store


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    yield opened
    opened.close()


def _rows(loaded, variant, n, start):
    spec = loaded.state.variant(variant).spec
    return [{"id": f"req-{variant}-{start + i}", "deployment_id": loaded.record.id, "version": loaded.version, "variant": variant,
             "spec": spec, "role": "served", "user_id": f"user-{i}", "sticky": True, "messages": [{"role": "user", "content": "hi"}],
             "response": "billing", "status": 200, "latency_ms": 120.0, "prompt_tokens": 20, "completion_tokens": 2,
             "cost_usd": 0.00001} for i in range(n)]


def test_the_report_shows_the_deployment_its_variants_alerts_and_which_evaluation_justified_each_change(store, tmp_path):
    loaded = create_deployment("tickets", baseline="zero-shot:smollm2-135m", candidates=["adapter:run-1"], share=10,
                               reason="evaluation eval-aaa: the fine-tune wins", store=store)
    baseline, candidate = _rows(loaded, "baseline", 40, 0), _rows(loaded, "candidate", 12, 0)
    store.log_requests(baseline + candidate)
    for row in baseline[:30]:
        store.add_feedback(row["id"], correct=True)
    for row in candidate:
        store.add_feedback(row["id"], correct=False)
    store.add_alert(loaded.record.id, rule="quality-drop", variant="candidate", value=1.0, threshold=0.0,
                    message="candidate quality 0% vs baseline 100%", delivered=None)
    set_deployment("tickets", rollback=True, reason="candidate answers badly", evaluation_id="eval-bbb", store=store)

    html, md = write_report(tmp_path / "report", store=store)
    text = md.read_text()
    assert "Deployment tickets" in text and "off (rolled back)" in text
    assert "Traffic over time" in text and "Alerts" in text and "quality-drop" in text
    assert "candidate answers badly" in text and "eval-bbb" in text and "eval-aaa" in text
    # quality per variant with its interval: 30 of 30 judged right for the baseline, 0 of 12 for the candidate
    assert "1.000 (0.886–1.000, n=30)" in text and "0.000 (0.000–0.242, n=12)" in text
    assert "candidate is worse than baseline" in text
    assert "Deployment tickets" in html.read_text()

    # Naming no deployment leaves this store with nothing to report: said in one line, not an empty page.
    with pytest.raises(EvaluationError, match="nothing to report yet"):
        write_report(tmp_path / "none", store=store, deployments=[])
