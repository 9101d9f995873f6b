"""`tunewise report`: one self-contained HTML page and a Markdown summary from stored evaluations, curves, audits."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

LABELS = ["billing", "login", "refund"]
BASELINE = "zero-shot:tiny"
TUNED = "adapter:run-tuned"
VERDICT = "the fine-tune beats zero-shot by 40.0 points (95% CI 25.0–55.0, p<0.001)"


def make_evaluation(store, folder: Path, *, rows: int = 30, task_type: str = "classification", nested: str = "candidates"):
    """A stored comparison of two candidates with per-row outputs, shaped like `tunewise.evaluate.evaluate` results."""
    outputs_path = folder / "outputs.jsonl"
    with outputs_path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            reference = LABELS[i % 3]
            base_pred = reference if i % 2 == 0 else LABELS[(i + 1) % 3]  # right on even rows
            tuned_pred = reference if i % 10 != 3 else None  # wrong (unparsed) on rows 3, 13, 23
            entries = {
                BASELINE: {"output": f"Category: {base_pred}", "prediction": base_pred, "correct": base_pred == reference},
                TUNED: {"output": tuned_pred or "I am not sure <b>", "prediction": tuned_pred, "correct": tuned_pred == reference},
            }
            text = f"ticket {i}: see http://example.com/help & fix my {reference}"
            row = {"index": i, "input": text, "reference": reference}
            if nested == "list":
                row["outputs"] = [{"name": k, **v} for k, v in entries.items()]
            else:
                row[nested] = entries
            handle.write(json.dumps(row) + "\n")

    def metric(value, low, high):
        return {"value": value, "low": low, "high": high}

    results = {
        "task_type": task_type,
        "primary_metric": "accuracy",
        "baseline": BASELINE,
        "verdict": VERDICT,
        "verdicts": {TUNED: VERDICT, "classic:tfidf": "no significant difference between classic and zero-shot"},
        "outputs_path": str(outputs_path),
        "candidates": [
            {"name": BASELINE, "spec": BASELINE, "kind": "zero-shot", "decoding": "free", "run_id": None, "status": "completed",
             "metrics": {"accuracy": metric(0.5, 0.33, 0.67), "macro_f1": metric(0.48, 0.3, 0.64)},
             "operations": {"latency_p50_ms": 41.2, "latency_p95_ms": 88.0, "tokens_in_mean": 120, "tokens_out_mean": 3.1,
                            "requests_per_second": 24.0, "cost_per_1k_usd": 0.0123, "cost_basis": "local CPU at $0.40/h"},
             "comparison": None},
            {"name": TUNED, "spec": TUNED, "kind": "adapter", "decoding": "constrained", "run_id": None, "status": "completed",
             "metrics": {"accuracy": metric(0.9, 0.8, 1.0), "macro_f1": metric(0.89, 0.77, 0.98)},
             "operations": {"latency_p50_ms": 39.0, "latency_p95_ms": 70.5, "tokens_in_mean": 60, "tokens_out_mean": 2.0,
                            "requests_per_second": 25.0, "cost_per_1k_usd": 0.0101, "cost_basis": "local CPU at $0.40/h"},
             "comparison": {"vs": BASELINE, "diff": 0.4, "low": 0.25, "high": 0.55, "p_value": 0.0002, "test": "McNemar (exact)",
                            "significant": True}},
            {"name": "endpoint:http://127.0.0.1:9/v1#m", "spec": "endpoint:http://127.0.0.1:9/v1#m", "kind": "endpoint",
             "status": "failed", "error": "connection refused after 3 retries", "metrics": {}, "operations": {}},
        ],
    }
    return store.add_evaluation(kind="compare", dataset_id=None, config={}, results=results, task_type=task_type, verdict=VERDICT)


def add_curve(store):
    from tunewise.evaluate.curve import curve_statement, fit_curve, _project

    sizes, scores = [50, 100, 250, 500], [0.55, 0.68, 0.8, 0.84]
    fit = fit_curve(sizes, scores)
    gain, projected = _project(fit, sizes, scores)
    results = {"metric": "accuracy", "sizes": sizes, "scores": scores, "fit": fit, "projected_gain_doubling": gain,
               "projected_score_doubling": projected, "run_ids": ["run-a", "run-b", "run-c", "run-d"]}
    results["statement"] = curve_statement(results)
    store.add_evaluation(kind="curve", dataset_id=None, config={}, results=results, verdict=results["statement"])
    return results


def external_references(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"' >]*""", page, flags=re.I)


def test_report_is_self_contained_and_has_the_verdict_table_and_sections(store, tmp_path):
    from tunewise.evaluate.report import write_report

    evaluation = make_evaluation(store, tmp_path)
    curve = add_curve(store)
    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": []}\n')
    dataset = store.add_dataset(data, format="chat", rows=1)
    store.add_audit(dataset.id, {"rows": 1200, "rows_rejected": 7, "pii": {"rows": 31, "matches": 40},
                                 "readiness": {"level": "ok", "verdict": "ready for a LoRA experiment"}}, passed=True)

    html_path, md_path = write_report(tmp_path / "report", store=store)
    page = html_path.read_text(encoding="utf-8")
    md = md_path.read_text(encoding="utf-8")

    assert external_references(page) == []
    assert "<link" not in page and "<script" not in page
    assert html.escape(VERDICT) in page and VERDICT in md
    # Candidates table: metric, interval, difference in points, p-value, significance; the failed endpoint is listed.
    assert "<th>95% CI</th>" in page and "diff vs zero-shot:tiny" in page
    assert "0.900" in page and "0.800–1.000" in page and "+40.0 pts" in page and "&lt;0.001" in page
    assert "failed: connection refused after 3 retries" in page
    assert "- no significant difference between classic and zero-shot" in md
    assert f"| **{TUNED}** | adapter | constrained | 0.900 | 0.800–1.000 | +40.0 pts | +25.0 pts to +55.0 pts | <0.001 | yes |" in md
    assert "| zero-shot:tiny | zero-shot | free | 0.500 |" in md and "baseline |" in md
    assert "| endpoint:http://127.0.0.1:9/v1#m | endpoint | – |" in md  # decoding is a local model's setting
    # Plots are embedded, and written beside the Markdown that links them.
    assert page.count("src='data:image/png;base64,") >= 3  # candidates, confusion, curve
    for name in ("report-candidates.png", "report-confusion.png", "report-curve.png"):
        assert (html_path.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md
    # Confusion of the best candidate, its worst errors with the raw (escaped) reply, latency and cost.
    assert f"Confusion matrix of the best candidate ({TUNED})" in md
    assert "→ (no label) (1)" in md
    assert "3 of 30 rows wrong" in md and "ticket 3:" in md
    assert "I am not sure &lt;b&gt;" in page and "I am not sure <b>" not in page
    assert "| zero-shot:tiny | 41.2 | 88.0 |" in md and "0.0101" in md
    # Learning curve, audit, decision.
    assert curve["statement"] in md and "Learning curve" in page
    assert "1,200 kept, 7 rejected" in md and "ready for a LoRA experiment" in page
    assert "## Decision" in md
    assert store.get_evaluation(evaluation.id).report_path == str(html_path.resolve())


def test_report_escapes_replies_and_reads_a_list_of_outputs(store, tmp_path):
    from tunewise.evaluate.report import write_report

    make_evaluation(store, tmp_path, nested="list")
    html_path, md_path = write_report(tmp_path / "r", store=store)
    page = html_path.read_text(encoding="utf-8")
    assert "I am not sure &lt;b&gt;" in page and "I am not sure <b>" not in page
    assert "3 of 30 rows wrong" in md_path.read_text()


def test_uses_a_stored_confusion_matrix_when_the_evaluation_has_one(store, tmp_path):
    from tunewise.evaluate.report import confusion_of

    evaluation = make_evaluation(store, tmp_path)
    results = dict(evaluation.results)
    results["candidates"][1]["details"] = {"confusion": {"labels": ["a", "b"], "columns": ["a", "b", "(no label)"], "matrix": [[3, 1, 0], [0, 4, 2]]}}
    store.update_evaluation(evaluation.id, results=results)
    rows, columns, matrix = confusion_of(store.get_evaluation(evaluation.id), results["candidates"][1])
    assert rows == ["a", "b"] and columns[-1] == "(no label)" and matrix[1] == [0, 4, 2]
    rows, columns, matrix = confusion_of(evaluation, {"name": BASELINE})  # computed from per-row outputs
    assert rows == LABELS and sum(map(sum, matrix)) == 30 and sum(matrix[i][i] for i in range(3)) == 15


def test_a_broken_decision_section_does_not_lose_the_report(store, tmp_path, monkeypatch):
    from tunewise.evaluate.report import write_report

    def boom(_store):
        raise RuntimeError("advice table missing")

    monkeypatch.setattr("tunewise.advise.decide.decision_section", boom)
    make_evaluation(store, tmp_path)
    html_path, md_path = write_report(tmp_path / "r", store=store)
    assert "could not be rendered (RuntimeError: advice table missing)" in md_path.read_text()
    assert html.escape(VERDICT) in html_path.read_text()


def test_an_empty_store_is_a_one_line_error(store, tmp_path):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.report import write_report

    with pytest.raises(EvaluationError, match="nothing to report yet"):
        write_report(tmp_path / "r", store=store)


def test_text_task_reports_without_a_confusion_matrix(store, tmp_path):
    from tunewise.evaluate.report import write_report

    make_evaluation(store, tmp_path, task_type="text")
    html_path, md_path = write_report(tmp_path / "r", store=store, evaluation_ref="latest")
    md = md_path.read_text()
    assert "Confusion matrix" not in md and "Worst errors" in md and "No learning curve yet" in md


def cli_app():
    import typer

    from tunewise.cli.evaluate_extra import register

    app = typer.Typer()
    eval_app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """root"""

    register(eval_app, app)
    app.add_typer(eval_app, name="eval")
    return app


def test_cli_report_and_every_command_has_an_example(store, tmp_path):
    import typer.main
    from typer.testing import CliRunner

    make_evaluation(store, tmp_path)
    app = cli_app()
    runner = CliRunner()
    result = runner.invoke(app, ["report", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.html").exists() and (tmp_path / "out" / "report.md").exists()

    root = typer.main.get_command(app)
    commands = [("report",), ("eval", "curve"), ("eval", "export-review"), ("eval", "import-review")]
    for path in commands:
        command = root
        for part in path:
            command = command.commands[part]
        assert "Example:" in (command.help or ""), path
        assert runner.invoke(app, [*path, "--help"]).exit_code == 0


def test_report_shows_how_the_fine_tune_was_trained_and_its_search_trials(store, tmp_path, tiny_model_dir):
    from tunewise.evaluate.report import write_report
    from tunewise.train.config import TrainConfig
    from tunewise.train.search import search

    rows = [{"messages": [{"role": "user", "content": f"ticket {i}: my {LABELS[i % 3]} issue"},
                          {"role": "assistant", "content": LABELS[i % 3]}]} for i in range(100)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = TrainConfig(model=str(tiny_model_dir), dataset=str(data), max_seq_length=160, lora_r=4, save_steps=1000,
                         threads=1, time_budget_minutes=0.15)
    found = search(config, store=store, progress=False)
    evaluation = make_evaluation(store, tmp_path)
    results = dict(evaluation.results)
    results["candidates"] = [dict(c, run_id=found.winner.id) if c["name"] == TUNED else c for c in results["candidates"]]
    store.update_evaluation(evaluation.id, results=results)

    _, md_path = write_report(tmp_path / "report", store=store)
    md = md_path.read_text(encoding="utf-8")
    assert "## Training runs" in md and found.winner.id in md
    assert "### Search trials (ranked by the held-out score)" in md
    for trial in found.trials:
        assert trial["run_id"] in md
    assert md.count("winner") == 1
