"""Learning curve: "would more data help?" answered by training at several sizes and fitting a saturating curve.

    from tunewise.evaluate.curve import learning_curve
    curve = learning_curve("train.jsonl", "eval.jsonl", [50, 100, 250, 500])
    print(curve.statement)          # doubling the data is projected to add ... points

CLI: `tunewise eval curve --data train.jsonl --eval eval.jsonl --sizes 50,100,250,500`.

For each size a LoRA run trains on a seeded, label-stratified subset (`max_train_examples`; subsets are
nested, so a bigger size adds data rather than swapping it), the adapter is evaluated on the same
held-out set, and a curve is fitted to (size, score): a saturating exponential a·(1−e^(−b·n))+c or an
inverse power law a−b·n^(−c), whichever fits better; log-linear a+b·ln(n) when neither converges or
there are fewer than three sizes. The result, a `CurveResults` record, is stored as an Evaluation of kind
`curve`; the point evaluations are kept as kind `curve-point`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

from tunewise.config import override
from tunewise.errors import EvaluationError, NotFoundError
from tunewise.records.evaluation import CandidateResult, CurveFit, CurveResults, EvaluationResults

FORMULAS = {
    "exponential": "a·(1−exp(−b·n))+c",
    "power": "a−b·n^(−c)",
    "log-linear": "a+b·ln(n)",
}


# -- the curve ----------------------------------------------------------------------------------


def learning_curve(
    train_path: str | Path,
    eval_path: str | Path,
    sizes: list[int],
    *,
    base_config=None,
    candidate_template: str = "adapter:{run_id}",
    store=None,
    progress: bool = True,
    train_fn: Callable | None = None,
    evaluate_fn: Callable | None = None,
    eval_config=None,
    limit: int | None = None,
    allow_contamination: bool = False,
    plot_dir: str | Path | None = None,
) -> CurveResults:
    """Train a LoRA at each size, evaluate each on `eval_path`, fit a curve, store it and return its results.

    `train_fn(config, store=, progress=)` and `evaluate_fn(eval_path, [spec], train_path=, config=, store=,
    allow_contamination=, progress=)` default to `tunewise.train.train` and `tunewise.evaluate.evaluate`
    (tests inject fakes). `limit` evaluates only the first N eval rows.
    Example: learning_curve("train.jsonl", "eval.jsonl", [50, 100, 250, 500]).projected_gain_doubling
    """
    sizes = _check_sizes(sizes, train_path)
    if train_fn is None:
        from tunewise.train import train as train_fn
    if evaluate_fn is None:
        from tunewise.evaluate import evaluate as evaluate_fn
    if base_config is None:
        from tunewise.train import TrainConfig

        # The recipe trains each point; nothing is held out, since the curve scores every point on eval_path.
        base_config = TrainConfig(dataset=str(train_path), holdout=0)
    if eval_config is None and limit is not None:
        from tunewise.evaluate.config import EvalConfig

        eval_config = EvalConfig(limit=limit)
    elif eval_config is not None and limit is not None:
        eval_config = override(eval_config, limit=limit)

    from tunewise.store import Store

    with Store.borrow(store) as store:
        scores: list[float] = []
        lows: list[float | None] = []
        highs: list[float | None] = []
        run_ids: list[str] = []
        eval_ids: list[str | None] = []
        metric = None
        confidence = None
        for step, size in enumerate(sizes, start=1):
            if progress:
                _say(f"learning curve: size {size} ({step}/{len(sizes)}): training")
            # The curve's data is train_path whatever the base config says: the sizes are subsets of that file.
            config = override(base_config, max_train_examples=size, dataset=str(train_path))
            run = train_fn(config, store=store, progress=progress)
            spec = candidate_template.format(run_id=run.id)
            if progress:
                _say(f"learning curve: size {size} ({step}/{len(sizes)}): evaluating {spec}")
            point: EvaluationResults = evaluate_fn(
                str(eval_path), [spec], train_path=str(train_path), config=eval_config, store=store,
                allow_contamination=allow_contamination, progress=progress,
            )
            candidate = _candidate(point, spec, run.id, size)
            metric, confidence = metric or point.primary_metric, confidence or point.confidence
            value = candidate.metric(metric)
            if value is None:
                raise EvaluationError(f"learning curve: size {size}: the evaluation has no {metric!r} score for {spec}")
            scores.append(value.value)
            lows.append(value.low)
            highs.append(value.high)
            run_ids.append(run.id)
            eval_ids.append(_demote_point_evaluation(store, point))

        fit = fit_curve(sizes, scores)
        gain, projected = _project(fit, sizes, scores)
        results = CurveResults(
            metric=metric, sizes=sizes, scores=scores, low=lows, high=highs, confidence=confidence, fit=fit,
            projected_gain_doubling=gain, projected_score_doubling=projected, run_ids=run_ids, evaluation_ids=eval_ids,
            limit=limit, statement="",
        )
        results.statement = curve_statement(results)
        record = store.add_evaluation(
            kind="curve",
            dataset_id=_dataset_id(store, eval_path),
            train_dataset_id=_dataset_id(store, train_path),
            config={"sizes": sizes, "candidate_template": candidate_template, "train": base_config.model_dump(mode="json"), "limit": limit},
            results=results.to_store(),
            candidates=[
                {"name": f"n={size}", "spec": candidate_template.format(run_id=run_id), "run_id": _known_run(store, run_id),
                 "status": "completed", "metrics": {metric: {"value": score, "low": low, "high": high}}}
                for size, run_id, score, low, high in zip(sizes, run_ids, scores, lows, highs)
            ],
            verdict=results.statement,
        )
        plot_path = Path(plot_dir) if plot_dir else _reports_dir()
        plot_path.mkdir(parents=True, exist_ok=True)
        plot_path = plot_path / f"curve-{record.id}.png"
        plot_path.write_bytes(plot_curve(results))
        results.evaluation_id = record.id
        results.plot_path = str(plot_path)
        store.update_evaluation(record.id, results=results.to_store(), report_path=str(plot_path))
        return results


def _check_sizes(sizes, train_path) -> list[int]:
    try:
        sizes = sorted({int(s) for s in sizes})
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"learning curve sizes {sizes!r}: use whole numbers such as 50,100,250,500") from exc
    if len(sizes) < 2 or sizes[0] < 1:
        raise EvaluationError(f"learning curve sizes {sizes}: give at least two positive sizes, e.g. --sizes 50,100,250,500")
    path = Path(train_path)
    if path.is_file():
        # Asking for more rows than exist would silently train the same data twice and flatten the curve.
        with path.open(encoding="utf-8") as handle:
            rows = sum(1 for line in handle if line.strip())
        if sizes[-1] > rows:
            raise EvaluationError(f"learning curve size {sizes[-1]} exceeds the {rows} rows of {path}: drop it from --sizes")
    return sizes


def _candidate(results: EvaluationResults, spec: str, run_id: str, size: int) -> CandidateResult:
    found = results.candidate(spec) or next((c for c in results.candidates if c.run_id == run_id), None)
    if found is None:
        raise EvaluationError(f"learning curve: size {size}: the evaluation returned no result for {spec}")
    if not found.completed:
        raise EvaluationError(f"learning curve: size {size}: candidate {spec} {found.status}: {found.error or 'no detail'}")
    return found


def _demote_point_evaluation(store, results: EvaluationResults) -> str | None:
    """Mark the per-size evaluation `curve-point`, so that `latest` comparisons and reports skip it."""
    if results.evaluation_id is None:
        return None
    store.update_evaluation(results.evaluation_id, kind="curve-point")
    return results.evaluation_id


def _known_run(store, run_id: str) -> str | None:
    try:
        return store.get_run(run_id).id
    except NotFoundError:
        return None  # an injected train function that stored nothing: keep the id in results only


def _dataset_id(store, path) -> str | None:
    try:
        return store.get_dataset(path).id
    except NotFoundError:
        return None


def _reports_dir() -> Path:
    from tunewise import workspace

    return workspace.find_root() / "reports"


def _say(message: str) -> None:
    from tunewise.console import err_console

    err_console.print(f"[dim]{message}[/]", highlight=False)


# -- fitting ------------------------------------------------------------------------------------


def _exponential(x, a, b, c):
    import numpy as np

    return a * (1.0 - np.exp(-b * x)) + c


def _power(x, a, b, c):
    import numpy as np

    return a - b * np.power(x, -c)


def fit_curve(sizes: list[int], scores: list[float]) -> CurveFit:
    """Fit score against training size: the better of the saturating exponential and the inverse power law, else log-linear.

    `note` says why log-linear was used when it was, or why a fit is rough.
    Example: fit_curve([50, 100, 200, 400], [0.52, 0.68, 0.79, 0.84]).model == "exponential"
    """
    import numpy as np

    n = np.asarray(sizes, dtype=float)
    y = np.asarray(scores, dtype=float)
    if len(n) != len(y) or len(n) < 2:
        raise EvaluationError("a learning curve needs a score for each of at least two sizes")
    scale = float(n.max())
    x = n / scale  # fit in units of the largest size: keeps b and c of order 1, so the optimizer converges
    tried: list[dict] = []
    notes: list[str] = []
    if len(n) >= 3:
        for model in ("exponential", "power"):
            try:
                tried.append(_fit_saturating(model, x, y, scale))
            except (RuntimeError, ValueError, FloatingPointError) as exc:
                notes.append(f"{model} fit failed ({str(exc).splitlines()[0][:80]})")
    else:
        notes.append("fewer than three sizes: a saturating curve has three parameters")
    good = [f for f in tried if f["sse"] is not None and math.isfinite(f["sse"]) and (f["r2"] is None or f["r2"] >= 0)]
    for f in tried:
        if f not in good:
            notes.append(f"{f['model']} fit rejected (R² {f['r2']:.2f})" if f["r2"] is not None else f"{f['model']} fit rejected")
    if good:
        best = min(good, key=lambda f: f["sse"] - (1e-12 if f["model"] == "exponential" else 0.0))
        if len(n) == 3:
            best["note"] = "three sizes fit three parameters exactly: treat the projection as rough"
        return CurveFit(**best)
    slope, intercept = np.polyfit(np.log(n), y, 1)
    fitted = intercept + slope * np.log(n)
    fit = {
        "model": "log-linear",
        "formula": FORMULAS["log-linear"],
        "params": {"a": float(intercept), "b": float(slope)},
        "asymptote": None,
        "note": "; ".join(notes) + "; fell back to log-linear (no plateau: the projection is optimistic for large sizes)",
    }
    fit.update(_goodness(y, fitted))
    return CurveFit(**fit)


def _fit_saturating(model: str, x, y, scale: float) -> dict:
    import numpy as np
    from scipy.optimize import OptimizeWarning, curve_fit

    span = float(y.max() - y.min()) or 1e-3
    if model == "exponential":
        function = _exponential
        start = [span * 1.5 * (1 if y[-1] >= y[0] else -1), 3.0, float(y[0]) - span * 0.5]
        bounds = ([-np.inf, 1e-4, -np.inf], [np.inf, 1e3, np.inf])
    else:
        function = _power
        start = [float(y.max()) + span * 0.2, span, 0.5]
        bounds = ([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 5.0])
    with warnings.catch_warnings():
        # Three points and three parameters leave no degrees of freedom: the covariance is undefined, the fit is still exact.
        warnings.simplefilter("ignore", OptimizeWarning)
        params, _ = curve_fit(function, x, y, p0=start, bounds=bounds, maxfev=20000)
    if not np.all(np.isfinite(params)):
        raise ValueError("non-finite parameters")
    lower, upper = bounds
    if any(np.isfinite(lo) and abs(p - lo) <= 1e-6 * max(1.0, abs(lo)) for p, lo in zip(params, lower)) or any(
        np.isfinite(hi) and abs(p - hi) <= 1e-6 * max(1.0, abs(hi)) for p, hi in zip(params, upper)
    ):
        # A rate pinned at its bound means the data do not have this shape (e.g. a straight line): not a real fit.
        raise ValueError("degenerate: a parameter sits on its bound")
    a, b, c = (float(p) for p in params)
    fitted = function(x, *params)
    if model == "exponential":
        # Back to per-example units: b·(n/scale) = (b/scale)·n.
        out = {"a": a, "b": b / scale, "c": c}
        asymptote = a + c
    else:
        # b·(n/scale)^(−c) = (b·scale^c)·n^(−c).
        out = {"a": a, "b": b * scale**c, "c": c}
        asymptote = a
    fit = {"model": model, "formula": FORMULAS[model], "params": out, "asymptote": float(asymptote), "note": None}
    fit.update(_goodness(y, fitted))
    return fit


def _goodness(y, fitted) -> dict:
    import numpy as np

    sse = float(np.sum((y - fitted) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    return {"sse": sse, "r2": (1.0 - sse / sst) if sst > 1e-15 else None}


def predict(fit: CurveFit, n: float) -> float:
    """The fitted curve's score at `n` training examples."""
    p = fit.params
    if fit.model == "exponential":
        return p["a"] * (1.0 - math.exp(-p["b"] * n)) + p["c"]
    if fit.model == "power":
        return p["a"] - p["b"] * n ** (-p["c"])
    return p["a"] + p["b"] * math.log(n)


def _project(fit: CurveFit, sizes: list[int], scores: list[float]) -> tuple[float, float]:
    """Gain of the fitted curve from the largest size to twice it (clipped to [0, 1] for rate metrics)."""
    n = max(sizes)
    here, there = predict(fit, n), predict(fit, 2 * n)
    if all(0.0 <= s <= 1.0 for s in scores):
        # Accuracy-like metrics cannot pass 1: a log-linear extrapolation otherwise promises the impossible.
        here, there = min(max(here, 0.0), 1.0), min(max(there, 0.0), 1.0)
    return float(there - here), float(there)


def curve_statement(results: CurveResults) -> str:
    """One sentence: the projected gain from doubling the data, with the fit that produced it."""
    n = max(results.sizes)
    gain, fit = results.projected_gain_doubling, results.fit
    rate = all(0.0 <= s <= 1.0 for s in results.scores)
    amount = f"{gain * 100:+.1f} points" if rate else f"{gain:+.4g}"
    how = {"exponential": "saturating exponential fit", "power": "inverse power-law fit", "log-linear": "log-linear fit (no saturating fit)"}[fit.model]
    r2 = f", R² {fit.r2:.2f}" if fit.r2 is not None else ""
    plateau = ""
    if fit.asymptote is not None:
        plateau = f"; plateau ≈ {fit.asymptote:.3f}" if rate else f"; plateau ≈ {fit.asymptote:.4g}"
    return f"Doubling the training data from {n:,} to {2 * n:,} examples is projected to change {results.metric} by {amount} ({how}{r2}{plateau})."


# -- plot -----------------------------------------------------------------------------------------


def plot_curve(results: CurveResults) -> bytes:
    """PNG bytes: the measured scores (with intervals when known), the fitted curve, and the doubling projection."""
    import numpy as np

    from tunewise.render import figure, png_bytes

    fig = figure(6.4, 3.8)
    ax = fig.add_subplot()
    sizes = np.asarray(results.sizes, dtype=float)
    scores = np.asarray(results.scores, dtype=float)
    if all(v is not None for v in [*results.low, *results.high]):
        yerr = np.vstack([scores - np.asarray(results.low, float), np.asarray(results.high, float) - scores]).clip(min=0)
        ax.errorbar(sizes, scores, yerr=yerr, fmt="o", color="#1f5fa8", capsize=3, label="measured (" + (f"{results.confidence:.0%} CI" if results.confidence is not None else "CI") + ")")
    else:
        ax.plot(sizes, scores, "o", color="#1f5fa8", label="measured")
    top = sizes.max()
    inside = np.geomspace(sizes.min(), top, 100)
    beyond = np.geomspace(top, 2 * top, 30)
    ax.plot(inside, [predict(results.fit, v) for v in inside], "-", color="#d9822b", label=f"fit: {results.fit.formula}")
    ax.plot(beyond, [predict(results.fit, v) for v in beyond], "--", color="#d9822b")
    ax.plot([2 * top], [results.projected_score_doubling], "s", color="#d9822b", label="projected at 2× data")
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel(results.metric)
    ax.set_title("Learning curve")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return png_bytes(fig)
