"""Human review: export side-by-side outputs, fill ratings, import them into the evaluation; bad CSVs fail on one line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from .conftest import stored

CLASSIC = "classic:tfidf"


def names(results):
    """(baseline, tuned) names of the real comparison: the zero-shot prompt and the constrained adapter."""
    return results.baseline, next(c.name for c in results.candidates if c.kind == "adapter")


def fill(csv_path: Path, ratings: dict[str, dict[int, str]]) -> None:
    """Write `ratings[candidate][row] = value` into the exported sheet, as a person would."""
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for record in rows[1:]:
        for name, values in ratings.items():
            if int(record[0]) in values:
                record[header.index(f"rating: {name}")] = values[int(record[0])]
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_export_fill_import_round_trip(store, tmp_path, real_comparison):
    from tunewise.evaluate.review import export_review, import_review, iter_outputs

    BASELINE, TUNED = names(real_comparison)
    evaluation = stored(store, real_comparison, tmp_path)
    files = export_review(evaluation.id, tmp_path / "review", store=store, limit=10)

    with files.csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    outputs = list(iter_outputs(real_comparison))[:10]
    assert len(rows) == 10
    assert list(rows[0]) == ["row", "input", "reference", f"output: {BASELINE}", f"output: {TUNED}", f"output: {CLASSIC}",
                             f"rating: {BASELINE}", f"rating: {TUNED}", f"rating: {CLASSIC}", "notes"]
    assert [r["input"] for r in rows] == [o.input for o in outputs]
    assert [r[f"output: {TUNED}"] for r in rows] == [o.candidates[TUNED].output for o in outputs]
    assert all(r[f"rating: {TUNED}"] == "" for r in rows)  # blank for people to fill
    # The failed endpoint candidate has no outputs to rate.
    assert not any("endpoint" in column for column in rows[0])

    page = files.html.read_text(encoding="utf-8")
    assert "<script" not in page and "src=" not in page
    wrong = sum(not o.candidates[n].correct for o in outputs for n in (BASELINE, TUNED, CLASSIC))
    assert page.count('class="wrap bad"') == wrong and page.count('class="wrap ok"') == 30 - wrong

    fill(files.csv, {TUNED: {0: "5", 1: "4", 2: "5", 3: "1", 4: "5"}, BASELINE: {0: "3", 1: "2", 2: "3"}})
    review = import_review(evaluation.id, files.csv, store=store)

    tuned = review.candidates[TUNED]
    assert tuned.n == 5 and tuned.scale == "1-5" and tuned.mean == pytest.approx(4.0)
    assert 1.0 <= tuned.low <= 4.0 <= tuned.high <= 5.0 and tuned.low < tuned.high
    assert review.candidates[BASELINE].mean == pytest.approx(8 / 3) and review.candidates[BASELINE].n == 3
    assert CLASSIC not in review.candidates  # nobody rated it
    assert review.rows_rated == 5 and review.confidence == 0.9  # the evaluation's own level
    # The interval is stats.mean_interval over the evaluation's resamples and seed, not a second bootstrap.
    from tunewise.evaluate import stats

    ratings = [5.0, 4.0, 5.0, 1.0, 5.0]
    expected = stats.mean_interval(ratings, stats.resample_indices(5, real_comparison.bootstrap_samples, 0), 0.9)
    assert (tuned.low, tuned.high) == pytest.approx((expected.low, expected.high))
    from tunewise.records.evaluation import EvaluationResults

    again = EvaluationResults.from_store(store.get_evaluation(evaluation.id).results)
    assert again.human_review == review
    assert again.candidates == real_comparison.candidates  # the rest of the results is untouched


def test_win_lose_ratings_become_a_win_rate(store, tmp_path, real_comparison):
    from tunewise.evaluate.review import export_review, import_review

    _, TUNED = names(real_comparison)
    stored(store, real_comparison, tmp_path)
    files = export_review("latest", tmp_path / "review", store=store, candidates=[TUNED], limit=4)
    fill(files.csv, {TUNED: {0: "win", 1: "Win", 2: "lose", 3: "tie"}})
    review = import_review("latest", files.csv, store=store)
    assert review.candidates[TUNED].scale == "win-rate"
    assert review.candidates[TUNED].mean == pytest.approx(2.5 / 4)


@pytest.mark.parametrize(
    "ratings, message",
    [
        ({CLASSIC: {0: "5", 2: "7"}}, r"review-.*\.csv:4: rating '7' for classic:tfidf: use 1-5 or win / lose / tie"),
        ({CLASSIC: {0: "great"}}, r"review-.*\.csv:2: rating 'great'"),
        ({CLASSIC: {0: "5", 1: "win"}}, r"review-.*\.csv:3: .*mixes 1-5 and win/lose"),
        ({}, r"no ratings filled in"),
    ],
)
def test_a_bad_rating_is_a_one_line_error_with_file_and_line(store, tmp_path, ratings, message, real_comparison):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.review import export_review, import_review

    evaluation = stored(store, real_comparison, tmp_path)
    files = export_review(evaluation.id, tmp_path / "review", store=store, limit=5)
    fill(files.csv, ratings)
    with pytest.raises(EvaluationError, match=message) as caught:
        import_review(evaluation.id, files.csv, store=store)
    assert "\n" not in str(caught.value)
    assert store.get_evaluation(evaluation.id).results["human_review"] is None


def test_a_bad_header_or_short_row_names_the_line(store, tmp_path, real_comparison):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.review import import_review

    evaluation = stored(store, real_comparison, tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("row,input,rating: nobody\n0,x,5\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"bad\.csv:1: column 'rating: nobody' names no candidate"):
        import_review(evaluation.id, bad, store=store)
    bad.write_text(f"row,input,rating: {CLASSIC}\n0,x,5\n1,y\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"bad\.csv:3: 2 fields, the header has 3"):
        import_review(evaluation.id, bad, store=store)
    bad.write_text("just,some,columns\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"bad\.csv:1: header needs a 'row' column"):
        import_review(evaluation.id, bad, store=store)


def test_unknown_candidate_and_missing_outputs(store, tmp_path, real_comparison):
    from tunewise.errors import EvaluationError
    from tunewise.evaluate.review import export_review

    evaluation = stored(store, real_comparison, tmp_path)
    with pytest.raises(EvaluationError, match="candidate 'few-shot:x' is not in evaluation"):
        export_review(evaluation.id, tmp_path / "r", store=store, candidates=["few-shot:x"])
    Path(evaluation.results["outputs_path"]).unlink()
    with pytest.raises(EvaluationError, match=r"outputs-0\.jsonl: the per-row outputs of evaluation .* are missing"):
        export_review(evaluation.id, tmp_path / "r", store=store)


def test_cli_export_then_import(store, tmp_path, real_comparison):
    from typer.testing import CliRunner

    from .test_report import cli_app

    evaluation = stored(store, real_comparison, tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli_app(), ["eval", "export-review", "-o", str(tmp_path / "rv"), "--limit", "3"])
    assert result.exit_code == 0, result.output
    sheet = tmp_path / "rv" / f"review-{evaluation.id}.csv"
    fill(sheet, {CLASSIC: {0: "4", 1: "5"}})
    result = runner.invoke(cli_app(), ["eval", "import-review", str(sheet)])
    assert result.exit_code == 0, result.output
    assert "4.50" in result.output
    result = runner.invoke(cli_app(), ["eval", "import-review", evaluation.id, str(sheet)])
    assert result.exit_code == 0, result.output
