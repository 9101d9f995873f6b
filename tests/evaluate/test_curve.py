"""Learning curve: the fit recovers known curves, the doubling projection has the right sign, runs are linked and stored."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from tunewise.records.evaluation import CandidateResult, CurveResults, EvaluationResults, MetricValue

SIZES = [50, 100, 200, 400, 800]


def saturating(n, a=0.3, b=0.004, c=0.55):
    return a * (1 - math.exp(-b * n)) + c


def test_fit_recovers_a_saturating_exponential():
    from tunewise.evaluate.curve import fit_curve, predict

    fit = fit_curve(SIZES, [saturating(n) for n in SIZES])
    assert fit.model == "exponential" and fit.r2 == pytest.approx(1.0)
    assert fit.params == pytest.approx({"a": 0.3, "b": 0.004, "c": 0.55}, rel=1e-3)
    assert fit.asymptote == pytest.approx(0.85, rel=1e-3)
    assert predict(fit, 1600) == pytest.approx(saturating(1600), abs=1e-4)


def test_fit_recovers_an_inverse_power_law():
    from tunewise.evaluate.curve import fit_curve

    scores = [0.9 - 2.0 * n**-0.5 for n in SIZES]
    fit = fit_curve(SIZES, scores)
    assert fit.model == "power"
    assert fit.params == pytest.approx({"a": 0.9, "b": 2.0, "c": 0.5}, rel=1e-3)


def test_noisy_saturating_data_still_fit_close():
    from tunewise.evaluate.curve import fit_curve

    noise = [0.01, -0.008, 0.006, -0.004, 0.003]
    fit = fit_curve(SIZES, [saturating(n) + d for n, d in zip(SIZES, noise)])
    assert fit.model in ("exponential", "power") and fit.r2 > 0.98
    assert fit.asymptote == pytest.approx(0.85, abs=0.05)


def test_doubling_projection_sign_follows_the_data():
    from tunewise.evaluate.curve import _project, fit_curve

    rising = [saturating(n) for n in SIZES]
    gain, projected = _project(fit_curve(SIZES, rising), SIZES, rising)
    assert gain == pytest.approx(saturating(1600) - saturating(800), abs=1e-4) and gain > 0
    assert projected == pytest.approx(saturating(1600), abs=1e-4)

    falling = [0.8, 0.75, 0.7, 0.66, 0.6]  # e.g. noisier labels in the added data
    gain, _ = _project(fit_curve(SIZES, falling), SIZES, falling)
    assert gain < 0

    flat = [0.7] * 5
    gain, _ = _project(fit_curve(SIZES, flat), SIZES, flat)
    assert gain == pytest.approx(0.0, abs=1e-6)


def test_falls_back_to_log_linear_and_says_why(monkeypatch):
    from tunewise.evaluate.curve import _project, fit_curve

    two = fit_curve([100, 200], [0.6, 0.7])
    assert two.model == "log-linear" and "fewer than three sizes" in two.note
    assert _project(two, [100, 200], [0.6, 0.7])[0] == pytest.approx(0.1)

    def no_convergence(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found: maxfev exceeded")

    monkeypatch.setattr("scipy.optimize.curve_fit", no_convergence)
    fit = fit_curve(SIZES, [saturating(n) for n in SIZES])
    assert fit.model == "log-linear"
    assert "exponential fit failed (Optimal parameters not found" in fit.note and "fell back to log-linear" in fit.note
    # A log-linear projection cannot push an accuracy past 1.
    steep = [0.5, 0.7, 0.9, 0.97, 0.99]
    fit = fit_curve(SIZES, steep)
    gain, projected = _project(fit, SIZES, steep)
    assert projected <= 1.0 and gain <= 0.01 + 1e-9


def point_results(candidates):
    """What `evaluate()` returns for one size, for the fakes that stand in for training and evaluating."""
    return EvaluationResults(task_type="classification", primary_metric="accuracy", verdict="-", candidates=candidates,
                             confidence=0.9, bootstrap_samples=10, eval_path="eval.jsonl", rows=20, hardware="test")


def fake_pipeline(store, score_of):
    """A train function that records a run per call and an evaluate function that scores it by its size."""
    calls = {"train": [], "evaluate": []}

    def train_fn(config, *, store, progress):
        calls["train"].append(config)
        run = store.create_run("lora", base_model="tiny", config=config.model_dump(mode="json"))
        return store.update_run(run.id, status="completed")

    def evaluate_fn(eval_path, candidates, *, train_path, config, store, allow_contamination, progress):
        calls["evaluate"].append((eval_path, candidates, train_path, config))
        run = store.get_run(candidates[0].split(":", 1)[1])
        n = run.config["max_train_examples"]
        score = score_of(n)
        candidate = CandidateResult(name=candidates[0], spec=candidates[0], kind="adapter", run_id=run.id, status="completed",
                                    metrics={"accuracy": MetricValue(value=score, low=score - 0.05, high=min(1.0, score + 0.05))})
        results = point_results([candidate])
        stored = store.add_evaluation(kind="compare", dataset_id=None, config={}, results=results.to_store())
        results.evaluation_id = stored.id
        return results

    return train_fn, evaluate_fn, calls


def write_rows(path, n):
    rows = [{"messages": [{"role": "user", "content": f"t{i}"}, {"role": "assistant", "content": "ab"[i % 2]}]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_learning_curve_trains_evaluates_fits_and_stores(store, tmp_path):
    from tunewise.evaluate.curve import learning_curve
    from tunewise.train import TrainConfig

    train = write_rows(tmp_path / "train.jsonl", 800)
    evals = write_rows(tmp_path / "eval.jsonl", 20)
    train_fn, evaluate_fn, calls = fake_pipeline(store, saturating)
    results = learning_curve(
        train, evals, [400, 50, 100, 200, 800], base_config=TrainConfig(model="tiny", dataset=str(train)), store=store,
        progress=False, train_fn=train_fn, evaluate_fn=evaluate_fn, limit=10, plot_dir=tmp_path / "plots",
    )

    assert [c.max_train_examples for c in calls["train"]] == SIZES
    assert all(call[3].limit == 10 for call in calls["evaluate"])
    assert results.sizes == SIZES and results.metric == "accuracy"
    assert results.scores == pytest.approx([saturating(n) for n in SIZES])
    assert results.fit.model == "exponential" and results.fit.params["b"] == pytest.approx(0.004, rel=1e-3)
    assert results.projected_gain_doubling == pytest.approx(saturating(1600) - saturating(800), abs=1e-4)
    assert "from 800 to 1,600 examples" in results.statement and "+" in results.statement

    stored = store.latest_evaluation(kind="curve")
    assert stored.id == results.evaluation_id
    assert CurveResults.from_store(stored.results) == results
    assert results.confidence == 0.9 and results.low[0] == pytest.approx(saturating(50) - 0.05)
    assert stored.verdict == results.statement
    linked = store.evaluation_candidates(stored.id)
    assert [c.run_id for c in linked] == results.run_ids and [c.name for c in linked] == [f"n={n}" for n in SIZES]
    assert open(results.plot_path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # The per-size evaluations are curve points: `latest` comparisons (report, review) skip them.
    assert store.latest_evaluation(kind="compare") is None
    assert sorted(results.evaluation_ids) == sorted(e.id for e in store.list_evaluations() if e.kind == "curve-point")


def test_bad_sizes_are_refused(store, tmp_path):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.curve import learning_curve

    train = write_rows(tmp_path / "train.jsonl", 120)
    fake = SimpleNamespace()
    with pytest.raises(EvaluationError, match="size 500 exceeds the 120 rows of"):
        learning_curve(train, train, [50, 500], store=store, train_fn=fake, evaluate_fn=fake)
    with pytest.raises(EvaluationError, match="at least two positive sizes"):
        learning_curve(train, train, [50], store=store, train_fn=fake, evaluate_fn=fake)


def test_a_failed_size_names_the_size_and_candidate(store, tmp_path):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.curve import learning_curve
    from tunewise.train import TrainConfig

    train = write_rows(tmp_path / "train.jsonl", 100)
    train_fn, _, _ = fake_pipeline(store, saturating)

    def failing(eval_path, candidates, **kwargs):
        return point_results([CandidateResult(name=candidates[0], spec=candidates[0], kind="adapter", status="failed",
                                              error="adapter folder missing")])

    with pytest.raises(EvaluationError, match=r"size 50: candidate adapter:run-\w+ failed: adapter folder missing"):
        learning_curve(train, train, [50, 100], base_config=TrainConfig(model="tiny"), store=store, progress=False,
                       train_fn=train_fn, evaluate_fn=failing)


def test_cli_curve_prints_the_projection(store, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import tunewise.evaluate.curve as curve

    from .test_report import cli_app

    train = write_rows(tmp_path / "train.jsonl", 400)
    train_fn, evaluate_fn, _ = fake_pipeline(store, saturating)
    real = curve.learning_curve

    def with_fakes(*args, **kwargs):
        from tunewise.train import TrainConfig

        given = kwargs.pop("base_config")
        assert given.holdout == 0  # the CLI holds nothing out: the curve scores each point on --eval
        return real(*args, base_config=given.model_copy(update={"model": "tiny"}), train_fn=train_fn, evaluate_fn=evaluate_fn,
                    progress=False, **kwargs)

    monkeypatch.setattr(curve, "learning_curve", with_fakes)
    result = CliRunner().invoke(cli_app(), ["eval", "curve", "--data", str(train), "--eval", str(train), "--sizes", "50,100,200,400"])
    assert result.exit_code == 0, result.output
    assert "Doubling the training data from 400 to 800 examples" in result.output


def test_real_two_size_curve_on_the_tiny_model(store, tmp_path, tiny_model_dir):
    from tunewise.evaluate.curve import learning_curve
    from tunewise.evaluate.config import EvalConfig
    from train.conftest import chat_rows, tiny_config, write_jsonl  # tests/ is on sys.path (rootdir-relative packages)

    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(24, seed=1))
    evals = write_jsonl(tmp_path / "eval.jsonl", chat_rows(8, seed=2))
    results = learning_curve(
        train, evals, [8, 24], base_config=tiny_config(tiny_model_dir, train, max_steps=2), store=store, progress=False,
        eval_config=EvalConfig(bootstrap_samples=100, max_new_tokens=4), allow_contamination=True,
    )
    assert results.sizes == [8, 24] and len(results.run_ids) == 2
    assert all(0.0 <= s <= 1.0 for s in results.scores) and results.fit.model == "log-linear"
    assert store.get_run(results.run_ids[1]).config["max_train_examples"] == 24
