"""`tunewise demo` drives every stage end to end; here on a tiny random model so that it takes seconds, not minutes."""

from tunewise.demo import DemoPlan, run_demo
from tunewise.store import Store


def test_demo_runs_every_stage_and_writes_the_report(tmp_path, tiny_model_dir):
    plan = DemoPlan(model=str(tiny_model_dir), train_examples=16, curve_sizes=(4, 8, 12, 16), curve_eval_rows=8,
                    eval_limit=12, few_shot_k=2, train_overrides={"batch_size": 4, "max_eval_examples": 4},
                    distill_pool_rows=8, distill_train_minutes=0.1)
    result = run_demo(tmp_path / "demo", plan=plan)

    assert [step.name for step in result.steps] == [
        "Embedded model", "Import the sample task", "Audit", "Clean", "Train a LoRA adapter",
        "Evaluate against prompt baselines", "Learning curve",
        "Distill: a teacher labels, a student learns", "Advise: fine-tune or not?",
        "Serve the fine-tune (OpenAI-compatible API)", "Deploy behind a 10% split and monitor", "Report",
    ]
    # The deployment answered every replayed row through real HTTP and took a feedback label for each.
    assert result.deployed and "12 requests" in result.deployed and "12 feedback labels" in result.deployed, result.deployed
    # The adapter answered the evaluation's rows over real HTTP exactly as it answered them in the evaluation.
    assert result.served and "12/12 replies identical" in result.served, result.served
    assert result.report_html.exists() and "Learning curve" in result.report_html.read_text()
    assert result.audit_html.exists()
    found = {row["check"]: row for row in result.found_vs_planted}
    # The sample task's generator planted these; the audit must find (nearly) all of them.
    assert found["PII rows"]["found_of_planted"] >= 0.9 * found["PII rows"]["planted"]
    assert found["contaminated rows"]["found_of_planted"] == found["contaminated rows"]["planted"] == 5
    assert result.verdict
    # The distillation labelled the hidden-label pool (every row accounted for) and scored teacher and student.
    # The tiny random model never names a label, so nothing is accepted and no student is trained (the embedded
    # model's run trains one: bench/RESULTS.md, "Demo").
    assert result.distilled == "0/8 accepted: no ticket reached agreement, so no student was trained", result.distilled
    summary = (result.root / "distill" / "labeled" / "summary.json").read_text()
    assert '"rows": 8' in summary

    store = Store.open(f"sqlite:///{result.root / '.tunewise' / 'tunewise.db'}")
    try:
        kinds = {e.kind for e in store.list_evaluations(limit=50)}
        assert {"compare", "curve"} <= kinds
        decision = store.latest_decision()
        assert decision is not None
        assert store.get_run(result.run_id).status == "completed"
        evaluation = store.get_evaluation(result.evaluation_id)
        _every_web_page_shows_the_demo(store, result)
    finally:
        store.close()

    # What the demo prints and writes is what it measured, not a placeholder: the verdict is the stored
    # evaluation's, and the report names every candidate it scored with its figure and the decision.
    from tunewise.records.evaluation import EvaluationResults

    results = EvaluationResults.from_store(evaluation.results)
    assert result.verdict == evaluation.verdict == results.verdict
    page = result.report_html.read_text()
    completed = [c for c in results.candidates if c.status == "completed"]
    assert len(completed) >= 4
    import html

    for candidate in completed:
        assert html.escape(candidate.name, quote=False) in page
    assert html.escape(results.verdict, quote=False) in page
    assert result.advice and html.escape(result.advice, quote=False) in page


def _every_web_page_shows_the_demo(store, result):
    """`tunewise ui` over the demo's own store: the five areas and the records the demo made, each page a 200."""
    from fastapi.testclient import TestClient

    from tunewise.ui import create_ui_app

    web = TestClient(create_ui_app(store))
    dataset = store.get_run(result.run_id).dataset_id
    pages = {"/": "tickets-ab", "/datasets": dataset, f"/datasets/{dataset}": result.run_id, "/runs": result.run_id,
             f"/runs/{result.run_id}": result.run_id, "/evaluations": result.evaluation_id,
             f"/evaluations/{result.evaluation_id}": result.verdict.split(" (")[0][:40], "/decision": "checklist",
             "/deployments": "tickets-ab", "/deployments/tickets-ab": "Decision trail"}
    import html

    for path, shown in pages.items():
        answer = web.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert html.escape(shown, quote=False) in answer.text, (path, shown)


def test_demo_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    import pytest

    from tunewise.errors import ConfigError

    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an earlier demo folder"):
        run_demo(precious)
    assert (precious / "notes.txt").read_text() == "keep me"
