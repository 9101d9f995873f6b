"""`tunewise demo`: every lifecycle stage, end to end, on the embedded model and the bundled sample task.

    from tunewise.demo import run_demo
    result = run_demo("tunewise-demo")
    print(result.report_html)

The demo is an ordinary user of the public API: it creates a workspace, imports the sample task,
audits it (and shows what it found against what the sample's generator planted), cleans it, trains a
LoRA adapter, evaluates it against zero-shot, few-shot, retrieval few-shot and a classic classifier,
draws a learning curve, asks `advise` whether the fine-tune pays, and writes the report. Every figure
it prints was measured in this run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.markdown import Markdown
from rich.table import Table

from tunewise.console import console


@dataclass
class DemoPlan:
    """What the demo runs. The defaults keep it near 16 minutes on 2 quiet CPU cores, under 20 (bench/RESULTS.md, "Demo")."""

    model: str = "smollm2-135m"
    # The LoRA run and the largest learning-curve point share these examples (the curve reuses the run);
    # 320 is the preset's measured choice (bench/RESULTS.md, "Training").
    train_examples: int = 320
    # The guide's "start with 50-100 examples", bracketed, plus the demo's run; measured to keep the demo
    # under 15 minutes on 2 cores (bench/RESULTS.md, "Demo").
    curve_sizes: tuple[int, ...] = (25, 50, 100, 320)
    # Eval rows per learning-curve point (the comparison of step 6 always uses the whole eval split).
    # The points are scored with label-constrained decoding: adapters trained on 25 examples still
    # ramble, and letting them ramble costs minutes without changing which label they pick first.
    curve_eval_rows: int | None = 60
    few_shot_k: int = 4
    # Few-shot examples are cut to this many characters: prefill of retrieval prompts dominates the
    # evaluation's time on a CPU, and a ticket's category shows in its first sentences.
    shot_max_chars: int = 300
    eval_limit: int | None = None
    # Held-out tickets replayed as deployment traffic: the retrieval baseline answers 90% of them at about
    # 0.6 s each on 2 CPU cores (its prompts are 3x a fine-tune's), so all 300 would push the demo past 15 minutes.
    traffic_rows: int = 150
    # Distillation: cleaned training tickets set aside with their labels hidden (steps 5-7 never see them),
    # labelled in step 8 by the evaluation's best prompt candidate (3 samples each); a student is trained on what
    # agreement accepts and scored on the eval set beside its teacher, whose replies step 6 measured (`--reuse`).
    # Small on purpose: on 2 CPU cores each teacher reply costs about half a second (bench/RESULTS.md, "Demo").
    distill_pool_rows: int = 80
    distill_train_minutes: float = 1.0
    # The LoRA run's time budget (`tunewise train --time-budget 4`): the step count that fits is measured.
    train_minutes: float = 4.0
    # Learning-curve points train one epoch each (`tunewise eval curve --epochs 1`) to keep the demo near 15 minutes.
    curve_epochs: float = 1.0
    train_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoStep:
    name: str
    seconds: float
    summary: str


@dataclass
class DemoResult:
    root: Path
    steps: list[DemoStep]
    run_id: str | None = None
    evaluation_id: str | None = None
    verdict: str | None = None
    advice: str | None = None
    report_html: Path | None = None
    report_md: Path | None = None
    audit_html: Path | None = None
    found_vs_planted: list[dict[str, Any]] = field(default_factory=list)
    served: str | None = None
    deployed: str | None = None
    distilled: str | None = None
    distill_evaluation_id: str | None = None

    @property
    def total_seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


@contextlib.contextmanager
def _workspace_env(root: Path) -> Iterator[None]:
    # Every stage finds its store and run folder through TUNEWISE_HOME; the demo points it at its own
    # folder for its duration so that it never touches the user's workspace.
    previous = os.environ.get("TUNEWISE_HOME")
    os.environ["TUNEWISE_HOME"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TUNEWISE_HOME", None)
        else:
            os.environ["TUNEWISE_HOME"] = previous


class _Steps:
    def __init__(self) -> None:
        self.done: list[DemoStep] = []

    def run(self, number: int, name: str, action: Callable[[], tuple[Any, str]]) -> Any:
        console.rule(f"[bold]{number}. {name}")
        started = time.perf_counter()
        value, summary = action()
        seconds = time.perf_counter() - started
        self.done.append(DemoStep(name, seconds, summary))
        console.print(f"[green]✓[/] {summary} [dim]({_duration(seconds)})[/]")
        return value


def run_demo(out_dir: str | Path = "tunewise-demo", *, plan: DemoPlan | None = None, fresh: bool = True) -> DemoResult:
    """Run the whole lifecycle on the sample task in `out_dir` and return what it measured.

    `fresh` deletes an earlier demo folder first (only one that holds a demo marker file), so that the
    figures come from this run alone.
    """
    plan = plan or DemoPlan()
    root = Path(out_dir).expanduser().resolve()
    _prepare_folder(root, fresh)
    steps = _Steps()
    result = DemoResult(root=root, steps=steps.done)
    with _workspace_env(root):
        from tunewise.store import Store
        from tunewise.workspace_init import init_workspace

        init_workspace(root)
        _write_settings(root, plan)
        (root / _MARKER).write_text("Written by `tunewise demo`; `tunewise demo` deletes and rewrites this folder.\n")
        store = Store.open()
        try:
            _run_steps(plan, root, store, steps, result)
        finally:
            store.close()
    _print_summary(result)
    return result


_MARKER = ".tunewise-demo"


def _write_settings(root: Path, plan: DemoPlan) -> None:
    """The demo's settings go in its workspace's tunewise.yaml, as a user sets theirs: every stage (eval, serve,
    deploy, distill) then reads the same ones, and `tunewise ...` commands in the folder reproduce the demo."""
    from tunewise.config import load_config, render_yaml
    from tunewise.workspace import config_path
    from tunewise.workspace_init import _HEADER

    settings = load_config()
    settings = settings.model_copy(update={"eval": settings.eval.model_copy(update={"shot_max_chars": plan.shot_max_chars})})
    config_path(root).write_text(_HEADER + render_yaml(settings) + "\n", encoding="utf-8")


def _prepare_folder(root: Path, fresh: bool) -> None:
    if root.exists() and fresh and any(root.iterdir()):
        if not (root / _MARKER).exists():
            from tunewise.errors import ConfigError

            raise ConfigError(f"{root}: not empty and not an earlier demo folder; pass another --out")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def _run_steps(plan: DemoPlan, root: Path, store, steps: _Steps, result: DemoResult) -> None:
    from tunewise.sample import SYSTEM_PROMPT, sample_paths

    sample = sample_paths()
    data_dir = root / "data"
    data_dir.mkdir(exist_ok=True)

    def load_model() -> tuple[Path, str]:
        from tunewise.models import _converted_dir, materialize, resolve

        source = resolve(plan.model)
        converted = source.is_gguf and (_converted_dir(source) / "model.safetensors").exists()
        folder = materialize(plan.model)
        if not source.is_gguf:
            how = "is a local folder"
        elif converted:
            how = "was already converted from GGUF (cached)"
        else:
            how = "converted once from GGUF to safetensors (later runs load the cached copy)"
        return folder, f"model {plan.model} {how}: {folder}"

    steps.run(1, "Embedded model", load_model)

    def import_data() -> tuple[dict[str, Path], str]:
        from tunewise.data.clean import import_dataset

        paths = {}
        for role in ("train", "eval"):
            copy = data_dir / sample[role].name
            shutil.copyfile(sample[role], copy)
            imported = import_dataset(copy, data_dir / f"{role}.jsonl", role=role)
            paths[role] = imported.output
            paths[f"{role}_rows"] = imported.kept
        shutil.copyfile(sample["annotations"], data_dir / sample["annotations"].name)
        paths["annotations"] = data_dir / sample["annotations"].name
        return paths, f"imported {paths['train_rows']} training and {paths['eval_rows']} eval tickets (12 categories) into {data_dir}"

    data = steps.run(2, "Import the sample task", import_data)

    def audit_data() -> tuple[Any, str]:
        from tunewise.data.audit import audit
        from tunewise.data.audit_html import write_audit_html

        audited = audit(data["train"], eval_path=data["eval"], model=plan.model, annotations_path=data["annotations"], store=store)
        result.audit_html = write_audit_html(audited, root / "audit.html") or root / "audit.html"
        result.found_vs_planted = found_vs_planted(audited)
        _show_audit(audited.summary, result.found_vs_planted)
        s = audited.summary
        return audited, (f"{s['pii']['rows']} rows with PII, {s['duplicates']['rows_in_clusters']} rows in duplicate clusters, "
                         f"{s['contamination']['hits']} eval rows seen in training, {s['labels']['suspected_mislabeled']} suspected "
                         f"wrong labels; HTML: {result.audit_html}")

    steps.run(3, "Audit", audit_data)

    def clean_data() -> tuple[Path, str]:
        from tunewise.data.clean import clean

        cleaned = clean(data["train"], data_dir / "train.clean.jsonl", dedup=True, redact_pii=True, drop_contaminated=True,
                        eval_path=data["eval"])
        labelled, hidden = _set_aside_pool(cleaned.output, data_dir / "train.labelled.jsonl", root / "distill", plan.distill_pool_rows,
                                           store)
        return labelled, (f"kept {cleaned.kept} of {cleaned.rows_in} rows: removed {cleaned.duplicates_removed} duplicates and "
                          f"{cleaned.contaminated_removed} contaminated rows, redacted PII in {cleaned.redacted_rows} rows; "
                          f"quarantine: {cleaned.quarantine}; {hidden} tickets set aside without labels for step 8 "
                          f"(distillation), {cleaned.kept - hidden} labelled ones in {labelled}")

    train_path = steps.run(4, "Clean", clean_data)

    def train_lora() -> tuple[Any, str]:
        from tunewise.train import demo_train_config, train

        # No eval_dataset: the recipe holds rows of the training file out to pick the best checkpoint, so the
        # eval set of step 6 stays unseen until the comparison.
        config = demo_train_config(str(train_path), None, model=plan.model, max_train_examples=plan.train_examples,
                                   time_budget_minutes=plan.train_minutes, **plan.train_overrides)
        run = train(config, store=store)
        metrics = run.metrics or {}
        return run, (f"LoRA run {run.id}: {metrics.get('train_examples', plan.train_examples)} examples, {metrics.get('steps')} steps, "
                     f"train loss {_num(metrics.get('train_loss'))}, held-out loss {_num(metrics.get('eval_loss'))}, "
                     f"held-out accuracy {_num(metrics.get('eval_accuracy'))} (best at step {metrics.get('best_step')}), "
                     f"{_num(metrics.get('tokens_per_second'), '{:.0f}')} tokens/s")

    run = steps.run(5, "Train a LoRA adapter", train_lora)
    result.run_id = run.id

    def evaluate_candidates() -> tuple[dict, str]:
        from tunewise.evaluate import evaluate
        from tunewise.evaluate.report import print_results

        k = plan.few_shot_k
        candidates = [
            f"zero-shot:{plan.model}",
            f"few-shot:{plan.model}?k={k}",
            f"knn-few-shot:{plan.model}?k={k}",
            "classic:tfidf",
            f"adapter:{run.id}",
        ]
        config = _eval_config(plan)
        # No explicit baseline: evaluate() compares everything with the best prompt candidate.
        results = evaluate(data["eval"], candidates, train_path=train_path, config=config, store=store)
        print_results(results, console)
        result.evaluation_id = results.evaluation_id
        result.verdict = results.verdict
        return results, f"verdict: {result.verdict}"

    steps.run(6, "Evaluate against prompt baselines", evaluate_candidates)

    def curve() -> tuple[dict, str]:
        from tunewise.evaluate.config import EvalConfig
        from tunewise.evaluate.curve import learning_curve
        from tunewise.train import TrainConfig, train

        def train_or_reuse(config, **kwargs):
            # The LoRA run of step 5 is the curve's point at its size: same data, settings and seed.
            if config.max_train_examples == plan.train_examples:
                return run
            return train(config, **kwargs)

        # Each point: the recipe with one epoch and nothing held out (the curve scores the eval set itself),
        # as `tunewise eval curve --epochs 1` trains them.
        base = TrainConfig(dataset=str(train_path), model=plan.model, epochs=plan.curve_epochs, holdout=0, **plan.train_overrides)
        fitted = learning_curve(train_path, data["eval"], list(plan.curve_sizes), base_config=base, store=store,
                                train_fn=train_or_reuse,
                                eval_config=EvalConfig(system_prompt=SYSTEM_PROMPT, decoding="constrained"),
                                limit=plan.curve_eval_rows, plot_dir=root / "report")
        scores = ", ".join(f"{n}: {s:.3f}" for n, s in zip(fitted.sizes, fitted.scores))
        gain = fitted.projected_gain_doubling
        return fitted, f"{fitted.metric} by training size: {scores}; projected gain from doubling the data: {_num(gain, '{:+.3f}')}"

    steps.run(7, "Learning curve", curve)

    def distill() -> tuple[Any, str]:
        return _distill_step(plan, root, data, train_path, store, result)

    steps.run(8, "Distill: a teacher labels, a student learns", distill)

    def decide() -> tuple[Any, str]:
        from tunewise.advise import advise
        from tunewise.config import load_config

        answers = Path(__file__).resolve().parent / "sample" / "demo-answers.yaml"
        shutil.copyfile(answers, root / "answers.yaml")
        settings = load_config()  # the demo workspace's, as `tunewise advise` would read them
        advice = advise(store, root / "answers.yaml", config=settings.advise, thresholds=settings.data.thresholds)
        result.advice = advice.title
        console.print(Markdown(advice.to_markdown()))
        return advice, f"advice: {advice.title}"

    steps.run(9, "Advise: fine-tune or not?", decide)

    def serve_adapter() -> tuple[Any, str]:
        from tunewise.serve.replay import replay_evaluation

        # The fine-tune as an application calls it: `tunewise serve` on a loopback port, the evaluation's
        # rows replayed through the OpenAI-compatible API, the replies compared with the ones evaluated.
        with _served(plan.model, {"tickets": run.id}, store) as url:
            replay = replay_evaluation(url, "tickets", result.evaluation_id, f"adapter:{run.id}", store=store)
        result.served = replay.summary()
        return replay, f"served as model 'tickets' by `tunewise serve`: {replay.summary()}"

    steps.run(10, "Serve the fine-tune (OpenAI-compatible API)", serve_adapter)

    def deploy() -> tuple[Any, str]:
        from tunewise.deploy.alerts import evaluate_rules
        from tunewise.deploy.config import AlertRule
        from tunewise.deploy.monitor import deployment_status, render_status
        from tunewise.deploy.state import create_deployment
        from tunewise.deploy.traffic import simulate_traffic
        from tunewise.serve import create_server
        from tunewise.serve.api import running

        # The guide's last step: the fine-tune behind a 10% sticky split against the evaluation's best prompt
        # baseline, the held-out tickets replayed by simulated users who report the right label as feedback.
        baseline = _compared(store, result.evaluation_id).baseline or f"zero-shot:{plan.model}"
        create_deployment("tickets-ab", baseline=baseline, candidates=[f"adapter:{run.id}"], share=10, model=plan.model,
                          recipe_data=str(train_path), eval_data=str(data["eval"]),
                          reason=f"evaluation {result.evaluation_id}: {result.verdict}", store=store)
        with running(create_server(plan.model, deployment="tickets-ab", store=store)) as port:
            # 8 in flight: on 2 cores prefill is compute-bound, and 16 in flight measured slower (237 s against 208 s for 300).
            rows = min(n for n in (plan.eval_limit, plan.traffic_rows) if n)
            traffic = simulate_traffic(f"http://127.0.0.1:{port}/v1", "tickets-ab", data["eval"], users=300,
                                       limit=rows, concurrency=8)
        rule = AlertRule(name="candidate-quality-drop", metric="quality_drop", threshold=0.0, variant="candidate", min_requests=10)
        fired = evaluate_rules("tickets-ab", rules=[rule], store=store, send=False)
        status = deployment_status("tickets-ab", store=store)
        console.print(render_status(status))
        alert = f"alert rule {rule.name}: {'FIRED' if fired else 'quiet'}"
        result.deployed = f"{traffic.summary()}; {alert}"
        return status, f"deployment 'tickets-ab' (10% to the fine-tune): {result.deployed}"

    steps.run(11, "Deploy behind a 10% split and monitor", deploy)

    def report() -> tuple[tuple[Path, Path], str]:
        from tunewise.evaluate.report import write_report

        html_path, md_path = write_report(root / "report", store=store, evaluation_ref=result.evaluation_id)
        result.report_html, result.report_md = Path(html_path), Path(md_path)
        return (html_path, md_path), f"report: {html_path} and {md_path}"

    steps.run(12, "Report", report)


def _eval_config(plan: DemoPlan):
    """The eval settings of the demo's comparisons: the workspace's (its tunewise.yaml), the plan's row limit and the
    sample task's system prompt. Step 8 reuses step 6's replies only because both use these."""
    from tunewise.config import load_config
    from tunewise.sample import SYSTEM_PROMPT

    return load_config().eval.model_copy(update={"limit": plan.eval_limit, "system_prompt": SYSTEM_PROMPT})


def _set_aside_pool(cleaned: Path, labelled: Path, distill_dir: Path, rows: int, store) -> tuple[Path, int]:
    """Hide the labels of `rows` cleaned tickets (a seeded sample): the unlabelled pool a teacher labels in step 8.
    The hidden labels go to their own file, read only to count how many of the teacher's labels are right; the
    labelled rest is registered as a child of the cleaned set, so runs and evaluations on it keep their lineage."""
    from tunewise.store import file_hash

    import json
    import random

    lines = cleaned.read_text(encoding="utf-8").splitlines()
    pool_lines = set(random.Random(0).sample(range(len(lines)), min(rows, len(lines) // 2)))
    distill_dir.mkdir(exist_ok=True)
    with (open(labelled, "w", encoding="utf-8") as kept, open(distill_dir / "pool.jsonl", "w", encoding="utf-8") as pool,
          open(distill_dir / "pool.hidden-labels.txt", "w", encoding="utf-8") as truth):
        for number, line in enumerate(lines):
            if number not in pool_lines:
                kept.write(line + "\n")
                continue
            example = json.loads(line)
            truth.write(example["messages"][-1]["content"] + "\n")
            pool.write(json.dumps({"messages": example["messages"][:-1]}, ensure_ascii=False) + "\n")
    parent = store.find_dataset_by_hash(file_hash(cleaned))
    store.add_dataset(labelled, format="chat", rows=len(lines) - len(pool_lines), role="train", name="train.labelled",
                      parent_id=parent.id if parent else None,
                      meta={"set_aside": f"{len(pool_lines)} rows of {cleaned.name} without labels, for distillation"})
    return labelled, len(pool_lines)


def _distill_step(plan: DemoPlan, root: Path, data: dict, train_path: Path, store, result: DemoResult) -> tuple[Any, str]:
    """Let the best prompt candidate label the pool of step 4, train a student on what agreement accepted, and
    score it on the eval set beside its teacher (the report's distillation section)."""
    from tunewise.distill.label import label_rows
    from tunewise.evaluate import evaluate
    from tunewise.train import demo_train_config, train

    teacher = _compared(store, result.evaluation_id).baseline or f"few-shot:{plan.model}?k={plan.few_shot_k}"
    distill_dir = root / "distill"
    truth = (distill_dir / "pool.hidden-labels.txt").read_text(encoding="utf-8").splitlines()
    # The teacher's examples are the labelled tickets, as in step 6: a pool ticket never shows its label.
    labeled = label_rows(distill_dir / "pool.jsonl", teacher=teacher, teacher_data=train_path,
                         out_dir=distill_dir / "labeled", concurrency=8, store=store, yes=True)
    accepted = [(row, true) for row, true in zip(labeled.rows, truth) if row["status"] == "accepted"]
    right = sum(row["label"] == true for row, true in accepted)
    counts = labeled.counts
    console.print(f"Teacher {teacher}: {counts['accepted']} of {counts['rows']} tickets accepted at agreement "
                  f">= {labeled.summary['settings']['min_agreement']}, {counts['queued']} queued for review, "
                  f"{counts['failed']} failed; the hidden labels agree with {right} of the {len(accepted)} accepted", highlight=False)
    if not accepted:
        result.distilled = f"0/{counts['rows']} accepted: no ticket reached agreement, so no student was trained"
        return labeled, f"teacher {teacher} labelled {counts['rows']} hidden-label tickets: {result.distilled}"
    student = train(demo_train_config(str(distill_dir / "labeled" / "accepted.jsonl"), None, model=plan.model,
                                      max_train_examples=None, time_budget_minutes=plan.distill_train_minutes,
                                      **plan.train_overrides), store=store)
    # The settings of step 6, so the teacher's replies measured there are taken, not generated again.
    config = _eval_config(plan)
    compared = evaluate(data["eval"], [teacher, f"adapter:{student.id}"], train_path=train_path, baseline=teacher,
                        config=config, store=store, reuse=result.evaluation_id)
    result.distill_evaluation_id = compared.evaluation_id
    result.distilled = (f"{counts['accepted']}/{counts['rows']} accepted ({right} right by the hidden labels), "
                        f"student {student.id}; {compared.verdict}")
    return compared, f"teacher {teacher} labelled {counts['rows']} hidden-label tickets: {result.distilled}"


def _compared(store, evaluation_id: str | None):
    from tunewise.evaluate.review import comparison_results

    return comparison_results(store.get_evaluation(evaluation_id))


@contextlib.contextmanager
def _served(model: str, adapters: dict[str, str], store) -> Iterator[str]:
    """`tunewise serve` in this process on a free loopback port, for as long as the block runs; yields its /v1 URL."""
    from tunewise.serve import create_server
    from tunewise.serve.api import running

    with running(create_server(model, adapters=adapters, store=store)) as port:
        yield f"http://127.0.0.1:{port}/v1"


def found_vs_planted(audited) -> list[dict[str, Any]]:
    """What the audit found in the sample task against what its generator planted (planted.json)."""
    from tunewise.sample import planted

    truth = planted()["train"]
    found = audited.found_lines()
    rows = []
    for check, planted_lines in (
        ("PII rows", {item["line"] for item in truth["pii"]}),
        # A planted duplicate is a pair: the copy's line and the line it copies are both in a cluster.
        ("near-duplicate rows", {line for item in truth["near_duplicates"] for line in (item["line"], item["copies"])}),
        ("exact-duplicate rows", {line for item in truth["exact_duplicates"] for line in (item["line"], item["copies"])}),
        ("wrong labels", {item["line"] for item in truth["wrong_labels"]}),
        ("contaminated rows", {item["train_line"] for item in truth["contamination"]}),
    ):
        lines = set(found.get(check, ()))
        rows.append({"check": check, "planted": len(planted_lines), "found": len(lines),
                     "found_of_planted": len(lines & planted_lines)})
    return rows


def _show_audit(summary: dict, comparison: list[dict[str, Any]]) -> None:
    readiness = summary.get("readiness") or {}
    if readiness.get("verdict"):
        console.print(f"Readiness: {readiness['verdict']}")
    table = Table(title="Audit: found against planted", show_lines=False)
    for column in ("check", "planted", "found", "of them planted", "recall"):
        table.add_column(column, justify="left" if column == "check" else "right")
    for row in comparison:
        recall = row["found_of_planted"] / row["planted"] if row["planted"] else None
        table.add_row(row["check"], str(row["planted"]), str(row["found"]), str(row["found_of_planted"]), _num(recall, "{:.0%}"))
    console.print(table)


def _print_summary(result: DemoResult) -> None:
    console.rule("[bold]Demo finished")
    table = Table(title=f"tunewise demo in {result.root}")
    table.add_column("step")
    table.add_column("time", justify="right")
    table.add_column("result")
    for step in result.steps:
        table.add_row(step.name, _duration(step.seconds), step.summary)
    table.add_row("[bold]total", f"[bold]{_duration(result.total_seconds)}", "")
    console.print(table)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s" if minutes else f"{seconds:.1f} s"


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


__all__ = ["run_demo", "DemoPlan", "DemoResult", "found_vs_planted"]
