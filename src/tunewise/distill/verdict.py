"""Teacher vs student: what a distilled student kept of its teacher's quality, at what cost, and when it pays back.

    from tunewise.distill.verdict import teacher_student
    from tunewise.store import Store
    with Store.borrow(None) as store:
        for pair in teacher_student(store, store.latest_evaluation("compare")):
            print(pair.kept_text, pair.break_even.text)

A pair is found in one comparison: an adapter candidate whose training run's dataset (or an ancestor of it,
through `parent_id`) was written by `tunewise distill label` (`meta["distilled"]`), and a candidate of the same
evaluation that is the teacher named there. Every figure is what the evaluation or the store measured: the
metric and its interval, cost per 1k requests and p50 latency from each candidate's `operations`, the
student's fixed cost from its run (`cost_usd`) and the labeling cost from the distilled folder's
summary.json. A figure nobody measured says "not measured"; nothing is filled in. The break-even volume uses
the ROI model's relation (`advise.roi.break_even_requests`); the paired test is the evaluation's own when the
teacher was its baseline, else the promotion gate's McNemar test on the per-row outputs
(`deploy.promote.gate_result`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tunewise.errors import EvaluationError, NotFoundError, StoreError, TunewiseError
from tunewise.records.evaluation import CandidateResult, EvaluationResults, MetricValue

__all__ = ["Side", "DistilledData", "BreakEven", "PairedTest", "TeacherStudent", "teacher_student", "normalise_teacher",
           "same_candidate", "distilled_dataset", "undertrained"]

MAX_ANCESTORS = 10  # a split of a reviewed set of a labelled set: a few levels at most
NOT_MEASURED = "not measured"


@dataclass
class Side:
    """One candidate of the pair as the evaluation measured it."""

    name: str
    metric: MetricValue
    cost_per_1k_usd: float | None
    latency_p50_ms: float | None
    amortized_ms_per_request: float | None
    cost_basis: str | None

    @property
    def cost_text(self) -> str:
        return NOT_MEASURED if self.cost_per_1k_usd is None else f"${self.cost_per_1k_usd:,.4f}"

    @property
    def latency_text(self) -> str:
        if self.latency_p50_ms is not None:
            return f"{self.latency_p50_ms:,.1f} ms"
        if self.amortized_ms_per_request is not None:
            # Batched local runs have no per-request latency: their figure is a throughput, shown as such.
            return f"{NOT_MEASURED} (batched: ~{self.amortized_ms_per_request:,.1f} ms amortised per request)"
        return NOT_MEASURED


@dataclass
class DistilledData:
    """Where the student's training data came from: the `tunewise distill label` dataset and its folder."""

    dataset_id: str
    teacher: str
    dir: str | None
    accepted: int | None
    reviewed: int | None
    labeling_cost_usd: float | None  # None: not measured (no summary.json, or it holds no cost)
    labeling_basis: str


@dataclass
class BreakEven:
    """The monthly volume at which the student's fixed cost is paid back by what it saves per request."""

    requests_per_month: float | None
    total_requests: float | None
    fixed_usd: float | None
    saving_per_request_usd: float | None
    months: int
    text: str


@dataclass
class PairedTest:
    """Student minus teacher on the primary metric, paired on the same rows."""

    diff: float
    low: float
    high: float
    p_value: float
    test: str
    significant: bool
    rows: int | None
    source: str


@dataclass
class TeacherStudent:
    """A teacher and the student distilled from it, compared in one evaluation."""

    evaluation_id: str | None
    metric: str
    confidence: float
    teacher: Side
    student: Side
    run_id: str | None
    data: DistilledData
    kept_pct: float | None  # student / teacher x 100; None when the teacher scored 0
    kept_text: str
    training_usd: float | None
    break_even: BreakEven
    test: PairedTest | None
    test_note: str
    notes: list[str] = field(default_factory=list)
    # Why the student's run was too short to judge distillation by (None when it had a fair chance): see `undertrained`.
    undertrained: str | None = None


def teacher_student(store, evaluation, *, months: int = 12) -> list[TeacherStudent]:
    """Every (teacher, distilled student) pair among the candidates of `evaluation` (an Evaluation of kind compare).

    `months` is the horizon of the break-even volume (advise.horizon_months in the CLI). An evaluation that
    is not a comparison, or has no such pair, gives [].
    Example: [p.kept_text for p in teacher_student(store, store.get_evaluation("eval-3f2a9c1b7d"))]
    """
    if evaluation is None or evaluation.kind == "curve":
        return []
    try:
        results = EvaluationResults.from_store(evaluation.results, where=f"evaluation {evaluation.id}")
    except StoreError:
        return []
    pairs = []
    for student in results.completed():
        if student.kind != "adapter":
            continue
        run = _run(store, student)
        data = distilled_dataset(store, run.dataset_id) if run is not None else None
        if data is None:
            continue
        teacher, note = _find_teacher(results, data.teacher, student)
        if teacher is None:
            continue
        pairs.append(_pair(store, evaluation, results, teacher, student, run, data, months, note))
    return pairs


# -- finding the pair -------------------------------------------------------------------------------


def _run(store, candidate: CandidateResult):
    run_id = candidate.run_id
    if not run_id:
        from tunewise.evaluate.specs import parse_spec

        try:
            run_id = parse_spec(candidate.spec).target
        except EvaluationError:
            return None
    try:
        return store.get_run(run_id)
    except TunewiseError:  # an adapter given as a folder, or a run deleted since
        return None


def distilled_dataset(store, dataset_id: str | None) -> DistilledData | None:
    """The nearest dataset at or above `dataset_id` (through parent_id) written by `tunewise distill label`, or None."""
    seen = set()
    while dataset_id and dataset_id not in seen and len(seen) < MAX_ANCESTORS:
        seen.add(dataset_id)
        try:
            dataset = store.get_dataset(dataset_id)
        except NotFoundError:
            return None
        meta = (dataset.meta or {}).get("distilled")
        if isinstance(meta, dict) and meta.get("teacher"):
            return _data(dataset.id, meta)
        dataset_id = dataset.parent_id
    return None


def _data(dataset_id: str, meta: dict) -> DistilledData:
    folder = meta.get("dir")
    cost, basis = None, f"{NOT_MEASURED}: the dataset names no labeling folder"
    if folder:
        summary_path = Path(folder) / "summary.json"
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            basis = f"{NOT_MEASURED}: {summary_path} is gone"
        except (OSError, ValueError) as exc:
            basis = f"{NOT_MEASURED}: {summary_path} is unreadable ({exc})"
        else:
            paid, cached = summary.get("cost_usd"), summary.get("cached_cost_usd") or 0.0
            if isinstance(paid, (int, float)):
                # A resumed run pays only for what was missing; the cached calls were paid by an earlier run.
                cost = float(paid) + float(cached)
                basis = f"summary.json: ${float(paid):,.4f} this run" + (f" + ${float(cached):,.4f} cached from earlier runs" if cached else "")
            else:
                basis = f"{NOT_MEASURED}: {summary_path} holds no cost_usd"
    return DistilledData(dataset_id=dataset_id, teacher=str(meta["teacher"]), dir=folder, accepted=meta.get("accepted"),
                         reviewed=meta.get("reviewed"), labeling_cost_usd=cost, labeling_basis=basis)


def normalise_teacher(spec: str) -> str:
    """A teacher spec as a candidate spec: stripped, `endpoint:` before a bare URL (as `tunewise distill label` reads it)."""
    text = spec.strip()
    return "endpoint:" + text if text.startswith(("http://", "https://")) else text


def _key(text: str, *, decoding: bool = True):
    from tunewise.evaluate.specs import parse_spec

    try:
        parsed = parse_spec(normalise_teacher(text))
    except EvaluationError:
        return None
    params = {k: v for k, v in parsed.params.items() if decoding or k != "decoding"}
    return parsed.kind, parsed.target, tuple(sorted(params.items()))


def same_candidate(a: str, b: str, *, decoding: bool = True) -> bool:
    """Whether two specs name the same candidate (kind, target and options, after `normalise_teacher`)."""
    key = _key(a, decoding=decoding)
    return key is not None and key == _key(b, decoding=decoding)


def _find_teacher(results: EvaluationResults, teacher: str, student: CandidateResult) -> tuple[CandidateResult | None, str]:
    others = [c for c in results.completed() if c is not student]
    for c in others:
        if same_candidate(teacher, c.name) or same_candidate(teacher, c.spec):
            return c, ""
    # A local teacher labels with the decoding its spec names (free by default); evaluated with another, it is
    # still that prompt on that model, and the report says the decoding differed.
    for c in others:
        if same_candidate(teacher, c.name, decoding=False):
            return c, f"the teacher labelled as {normalise_teacher(teacher)}; the evaluation decoded it {c.decoding}"
    return None, ""


# -- the figures --------------------------------------------------------------------------------------


def _side(c: CandidateResult, metric: str) -> Side:
    ops = c.operations
    return Side(name=c.name, metric=c.metrics[metric], cost_per_1k_usd=ops.cost_per_1k_usd if ops else None,
                latency_p50_ms=ops.latency_p50_ms if ops else None,
                amortized_ms_per_request=ops.amortized_ms_per_request if ops else None, cost_basis=ops.cost_basis if ops else None)


def _pair(store, evaluation, results, teacher_c, student_c, run, data: DistilledData, months: int, note: str) -> TeacherStudent:
    metric = results.primary_metric
    teacher, student = _side(teacher_c, metric), _side(student_c, metric)
    t, s = teacher.metric.value, student.metric.value
    if t == 0:
        kept_pct, kept_text = None, f"the teacher scored 0 {metric}: no share of its quality to keep (student {s:.3f})"
    else:
        kept_pct = s / t * 100
        kept_text = f"the student kept {kept_pct:.1f}% of the teacher's {metric} ({s:.3f} of {t:.3f})"
    training = run.cost_usd
    test, test_note = _paired(store, evaluation, results, teacher_c, student_c)
    short = undertrained(run.metrics or {})
    if short:
        kept_text += f"; but {short}"
    return TeacherStudent(
        evaluation_id=evaluation.id, metric=metric, confidence=results.confidence, teacher=teacher, student=student,
        run_id=run.id, data=data, kept_pct=kept_pct, kept_text=kept_text, training_usd=training,
        break_even=_break_even(teacher, student, training, run.id, data, months), test=test, test_note=test_note,
        notes=[note] if note else [], undertrained=short,
    )


def undertrained(metrics: dict) -> str | None:
    """Why a run's result says little about what its data can teach, from what it recorded; None if nothing says so.

    A run that saw less than one pass over its examples never met some of them, and one stopped by its time
    budget while its held-out score still rose had more to learn: judging distillation by either is unfair.
    """
    epochs, steps = metrics.get("epochs"), metrics.get("steps")
    budget = (metrics.get("time_budget") or {}).get("minutes")
    by_budget = f" before its {budget:g}-minute budget ran out" if budget and metrics.get("stopped_at_time_budget") else ""
    if isinstance(epochs, (int, float)) and epochs < 1:
        return (f"its run saw {epochs:.2f} of an epoch ({steps} steps){by_budget}, too little to judge distillation by; "
                "train the student longer (`tunewise train --data ACCEPTED --time-budget N`)")
    if metrics.get("still_improving") is True and by_budget:
        return (f"its run was still improving on held-out rows{by_budget}, so distillation is not judged yet; "
                "train the student longer (`tunewise train --data ACCEPTED --time-budget N`)")
    return None


def _break_even(teacher: Side, student: Side, training: float | None, run_id: str, data: DistilledData, months: int) -> BreakEven:
    from tunewise.advise.roi import break_even_requests

    unknown = [f"{side.name}'s cost per 1k requests is {NOT_MEASURED}" for side in (teacher, student) if side.cost_per_1k_usd is None]
    if training is None:
        unknown.append(f"the training cost of run {run_id} is {NOT_MEASURED}")
    if data.labeling_cost_usd is None:
        unknown.append(f"the labeling cost is {data.labeling_basis}")
    fixed = None if training is None or data.labeling_cost_usd is None else training + data.labeling_cost_usd
    saving = None
    if teacher.cost_per_1k_usd is not None and student.cost_per_1k_usd is not None:
        saving = (teacher.cost_per_1k_usd - student.cost_per_1k_usd) / 1000
    if saving is not None and saving <= 0:
        text = (f"no break-even: the student costs ${student.cost_per_1k_usd:,.4f} per 1k requests, the teacher "
                f"${teacher.cost_per_1k_usd:,.4f}: it saves nothing per request")
        return BreakEven(None, None, fixed, saving, months, text)
    if unknown:
        return BreakEven(None, None, fixed, saving, months, f"break-even unknown: {'; '.join(unknown)}")
    per_month = break_even_requests(fixed, saving, months)
    total = per_month * months
    text = (f"break-even at {per_month:,.0f} requests a month over {months} months ({total:,.0f} requests in all): "
            f"${fixed:,.2f} fixed (training ${training:,.2f} + labeling ${data.labeling_cost_usd:,.2f}) / "
            f"${saving * 1000:,.4f} saved per 1k requests")
    return BreakEven(per_month, total, fixed, saving, months, text)


def _paired(store, evaluation, results: EvaluationResults, teacher: CandidateResult, student: CandidateResult) -> tuple[PairedTest | None, str]:
    stored = student.comparison
    if stored is not None and stored.vs == teacher.name:
        # The teacher was the evaluation's baseline: its own test, on its own resamples.
        return PairedTest(diff=stored.diff, low=stored.low, high=stored.high, p_value=stored.p_value, test=stored.test,
                          significant=stored.significant, rows=results.rows, source=f"evaluation {evaluation.id}"), ""
    from tunewise.deploy.promote import gate_result

    try:
        gate = gate_result(evaluation.id, student.name, teacher.name, store=store)
    except TunewiseError as exc:
        return None, f"no paired test: {exc}"
    return PairedTest(diff=gate.diff, low=gate.low, high=gate.high, p_value=gate.p_value, test="mcnemar-exact",
                      significant=gate.p_value < gate.alpha, rows=gate.rows,
                      source=f"per-row outputs of evaluation {evaluation.id}"), ""
