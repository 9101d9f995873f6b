"""`tunewise report`: one self-contained HTML page and a Markdown summary from evaluations, curves and audits that real runs stored."""

from __future__ import annotations

import html
import json
import re

import markupsafe
import pytest

from .conftest import stored

LABELS = ["billing", "bug", "login"]


def external_references(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"' >]*""", page, flags=re.I)


def by_kind(results, kind):
    return next(c for c in results.candidates if c.kind == kind)


def test_report_is_self_contained_and_has_the_verdict_table_and_sections(store, tmp_path, real_workspace, real_comparison, real_curve,
                                                                       tiny_model_dir):
    from tunewise.data.audit import audit
    from tunewise.evaluate.report import write_report
    from tunewise.evaluate.review import iter_outputs

    results = real_comparison
    evaluation = stored(store, results, tmp_path)
    stored(store, real_curve, tmp_path)
    folder, _ = real_workspace
    audited = audit(folder / "train.jsonl", eval_path=folder / "eval.jsonl", model=str(tiny_model_dir), store=store, progress=False)

    html_path, md_path = write_report(tmp_path / "report", store=store)
    page = html_path.read_text(encoding="utf-8")
    md = md_path.read_text(encoding="utf-8")

    assert external_references(page) == []
    assert "<link" not in page and "<script" not in page
    assert html.escape(results.verdict) in page and f"**Verdict:** {results.verdict}" in md
    # Candidates: metric, interval labelled at the configured level (90%, not 95%), difference in points, p-value.
    tuned, classic, failed = by_kind(results, "adapter"), by_kind(results, "classic"), by_kind(results, "endpoint")
    assert "<th>90% CI</th>" in page and "95%" not in page and "95%" not in md
    a, c = tuned.metrics["accuracy"], tuned.comparison
    assert (f"| {tuned.name} | adapter | constrained | {a.value:.3f} | {a.low:.3f}–{a.high:.3f} | {c.diff * 100:+.1f} pts | "
            f"{c.low * 100:+.1f} pts to {c.high * 100:+.1f} pts |") in md
    assert f"| **classic:tfidf** | classic | – | {classic.metrics['accuracy'].value:.3f} |" in md  # the best, in bold
    assert f"| {results.baseline} | zero-shot | free |" in md and "| baseline |" in md
    assert f"failed: {failed.error}" in page and "cannot connect" in failed.error
    assert "Paired test: mcnemar-exact." in md and "(200 resamples)" in md
    # Plots are embedded, and written beside the Markdown that links them.
    assert page.count('src="data:image/png;base64,') == 3  # candidates, confusion, curve
    for name in ("report-candidates.png", "report-confusion.png", "report-curve.png"):
        assert (html_path.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md
    # The best candidate's confusion and worst errors, counted from what the run stored.
    assert "## Confusion matrix of the best candidate (classic:tfidf)" in md
    wrong = [r for r in iter_outputs(results) if not r.candidates["classic:tfidf"].correct]
    assert wrong and f"{len(wrong)} of 30 rows wrong" in md
    assert any(f"| {r.index} | {r.input} |" in md for r in wrong)
    # Latency where it is measured per request, amortised time per request where requests ran batched.
    assert f"| classic:tfidf | {classic.operations.latency_p50_ms:.1f} | {classic.operations.latency_p95_ms:.1f} | – |" in md
    assert f"| {tuned.name} | – | – | {tuned.operations.amortized_ms_per_request:.1f} |" in md
    assert "amortised ms / request" in page
    # Learning curve, audit, decision.
    assert real_curve.statement in md and "<h2>Learning curve</h2>" in page
    summary = audited.record
    assert f"{summary.rows:,} kept, {summary.rows_rejected:,} rejected" in md
    assert str(markupsafe.escape(summary.readiness.verdict)) in page
    assert "## Decision" in md
    assert store.get_evaluation(evaluation.id).report_path == str(html_path.resolve())


def test_report_escapes_replies(store, tmp_path, real_comparison):
    from tunewise.evaluate.report import write_report

    # A reply with markup in it, as a model may write one: the page shows it, it does not render it.
    evaluation = stored(store, real_comparison, tmp_path)
    outputs = evaluation.results["outputs_path"]
    lines = [json.loads(line) for line in open(outputs, encoding="utf-8")]
    wrong = next(r for r in lines if not r["candidates"]["classic:tfidf"]["correct"])
    wrong["input"] = "I am not sure <b>bold</b> & <script>x</script>"
    with open(outputs, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in lines)
    html_path, md_path = write_report(tmp_path / "r", store=store)
    page = html_path.read_text(encoding="utf-8")
    assert "I am not sure &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in page and "<b>bold" not in page
    assert "I am not sure &lt;b>bold&lt;/b> & &lt;script>" in md_path.read_text(encoding="utf-8")


def test_the_confusion_matrix_is_the_one_the_evaluation_stored(real_comparison):
    from tunewise.evaluate.report import confusion_of
    from tunewise.evaluate.review import iter_outputs

    classic = by_kind(real_comparison, "classic")
    confusion = confusion_of(classic)
    assert confusion.labels == LABELS and confusion.columns == [*LABELS, "(no label)"]
    rows = list(iter_outputs(real_comparison))
    assert sum(map(sum, confusion.matrix)) == 30
    assert sum(confusion.matrix[i][i] for i in range(3)) == sum(r.candidates["classic:tfidf"].correct for r in rows)


def test_a_broken_decision_section_does_not_lose_the_report(store, tmp_path, monkeypatch, real_comparison):
    from tunewise.evaluate.report import write_report

    def boom(_store):
        raise RuntimeError("advice table missing")

    monkeypatch.setattr("tunewise.advise.decide.decision_section", boom)
    stored(store, real_comparison, tmp_path)
    html_path, md_path = write_report(tmp_path / "r", store=store)
    assert "could not be rendered (RuntimeError: advice table missing)" in md_path.read_text()
    assert html.escape(real_comparison.verdict) in html_path.read_text()


def test_an_empty_store_is_a_one_line_error(store, tmp_path):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.report import write_report

    with pytest.raises(EvaluationError, match="nothing to report yet"):
        write_report(tmp_path / "r", store=store)


def test_results_written_before_records_were_typed_read_as_version_0_or_fail_in_one_line(store, tmp_path, real_comparison):
    from tunewise.errors import StoreError
    from tunewise.evaluate.report import write_report

    # What an earlier tunewise stored (the same shape, without kind and schema_version) still reports.
    evaluation = stored(store, real_comparison, tmp_path)
    untyped = {k: v for k, v in evaluation.results.items() if k not in ("kind", "schema_version")}
    store.update_evaluation(evaluation.id, results=untyped)
    html_path, _ = write_report(tmp_path / "ok", store=store)
    assert "Candidates" in html_path.read_text()

    broken = store.add_evaluation(kind="compare", dataset_id=None, config={}, results={"primary_metric": "accuracy", "candidates": []})
    with pytest.raises(StoreError, match=f"evaluation {broken.id}: evaluation-results record is malformed at .*earlier tunewise") as info:
        write_report(tmp_path / "r", store=store)
    assert "\n" not in str(info.value)


def test_text_task_reports_without_a_confusion_matrix(store, tmp_path, real_text):
    from tunewise.evaluate.report import write_report

    stored(store, real_text, tmp_path)
    html_path, md_path = write_report(tmp_path / "r", store=store, evaluation_ref="latest")
    md = md_path.read_text()
    assert "Confusion matrix" not in md and "No learning curve yet" in md
    assert "Worst errors of the best candidate" in md and "lowest-scoring of 6 rows" in md


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


def test_cli_report_and_every_command_has_an_example(store, tmp_path, real_comparison):
    import typer.main
    from typer.testing import CliRunner

    stored(store, real_comparison, tmp_path)
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


def test_report_shows_how_the_fine_tune_was_trained_and_its_search_trials(store, tmp_path, tiny_model_dir, real_comparison):
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
    tuned = by_kind(real_comparison, "adapter")
    results = real_comparison.model_copy(deep=True)
    results.candidates[results.candidates.index(tuned)].run_id = found.winner.id
    stored(store, results, tmp_path)

    _, md_path = write_report(tmp_path / "report", store=store)
    md = md_path.read_text(encoding="utf-8")
    assert "## Training runs" in md and found.winner.id in md
    assert "### Search trials (ranked by the held-out score)" in md
    for trial in found.trials:
        assert trial["run_id"] in md
    assert md.count("winner") == 1
