"""The ROI guide's 7-step checklist, its 5 win and 5 lose signals, and the verdict they lead to.

Pure logic over the facts (`tunewise.records.decision.Fact` by key): no store, no I/O. `checks` answers
every step and signal from the facts (None where they say nothing); `decide` walks the guide's order
(a classic classifier that matches, a measured fine-tune, the lose signals, retrieval, a teacher, the
prompt) and says why, each reason with its sources.
"""

from __future__ import annotations

from typing import Any

from tunewise.advise.config import AdviseConfig
from tunewise.data.config import Thresholds
from tunewise.pricing import Catalog
from tunewise.records.decision import Check, Fact, join_sources

__all__ = ["VERDICTS", "checks", "decide", "caveat", "show"]

VERDICTS = {
    "classic": "Use a classic classifier",
    "prompt": "Keep improving the prompt",
    "retrieval": "Add retrieval",
    "lora": "Run a LoRA experiment",
    "full-sft": "Full SFT",
    "distill": "Distill from a teacher",
}




def _check(key: str, question: str, answer: bool | None, evidence: str, source: str) -> Check:
    return Check(key=key, question=question, answer=answer, evidence=evidence, source=source)


def checks(facts, get, src, config: AdviseConfig, bars: Thresholds):
    examples, agreement = get("examples"), get("label_agreement")
    revisions = get("prompt_revisions")
    revisions_src = "prompt_revisions"
    if revisions is None and get("prompt_versions") is not None:
        revisions, revisions_src = get("prompt_versions"), "prompt_versions"
    techniques, plateau = get("prompt_techniques_tried"), get("prompt_plateau_days")
    plateau_src = "prompt_plateau_days"
    if plateau is None and get("eval_span_days") is not None:
        plateau, plateau_src = get("eval_span_days"), "eval_span_days"

    exhausted: bool | None
    if (revisions is not None and revisions < 3) or (techniques is not None and techniques < 6):
        exhausted = False
    elif revisions is not None and techniques is not None:
        exhausted = True
    else:
        exhausted = None
    ev_prompt = f"{show(revisions)} prompt revisions/versions, {show(techniques)} of 8 techniques tried"

    consistent = None if agreement is None else agreement >= bars.agreement_bar
    if examples is None:
        enough = None
    elif examples < bars.full_sft_from or consistent is False:
        enough = False
    else:
        enough = True if consistent else None
    ev_data = f"{get('examples_basis') or show(examples) + ' examples'}, agreement {show(agreement)}"

    latency = get("latency_floor_binding")
    p50 = get("baseline_latency_p50_ms")
    ev_latency = "answered" if latency is not None else "not answered"
    amortized = get("baseline_amortized_ms")
    if p50 is not None:
        ev_latency += f"; measured baseline p50 {p50:.0f} ms"
    elif amortized is not None:
        # Batched local runs give wall time / requests: throughput, not the p50 one request waits.
        ev_latency += f"; baseline amortised {amortized:.0f} ms per request (batched: throughput, not p50 latency)"
    spend = get("monthly_base_spend_usd")
    upgrade = get("base_upgrade_expected")
    # Tried when the store holds a LoRA run or a distillation (a dataset `tunewise distill label` wrote).
    lora, distilled = get("lora_tried"), get("distill_tried")
    tried = True if (lora or distilled) else (False if lora is False or distilled is False else None)
    ev_tried = "; ".join(facts[k].detail for k in ("lora_tried", "distill_tried", "distill_kept_pct") if k in facts) or "not answered"
    checklist = [
        _check("prompt_exhausted", "Have you exhausted prompt iteration (3-5 expert revisions)?", exhausted, ev_prompt,
              src(revisions_src, "prompt_techniques_tried")),
        _check("data_10k_consistent", f"Do you have {bars.full_sft_from:,}+ consistent training examples?", enough, ev_data,
              src("examples", "label_agreement")),
        _check("structured_bar", "Is your quality bar above 99.5% on structured outputs?", get("structured_bar_above_99_5"),
              "answered" if "structured_bar_above_99_5" in facts else "not answered", src("structured_bar_above_99_5")),
        _check("latency_binding", "Is your latency floor binding (need <200ms p50)?", latency, ev_latency,
              src("latency_floor_binding", "baseline_latency_p50_ms", "baseline_amortized_ms")),
        _check("spend_over_5k", f"Is your monthly base-model spend already > ${config.spend_threshold_usd:,.0f}?",
              None if spend is None else spend > config.spend_threshold_usd, f"${show(spend, '{:,.0f}')}/month" + caveat(facts, "monthly_base_spend_usd"),
              src("monthly_base_spend_usd")),
        _check("tried_lora_or_distill", "Have you tried distillation or LoRA first?", tried, ev_tried,
              src("lora_tried", "distill_tried", "distill_kept_pct")),
        _check("base_stable", "Will the base model stabilize (no major upgrade expected in 3 months)?",
              None if upgrade is None else not upgrade, "answered" if upgrade is not None else "not answered",
              src("base_upgrade_expected")),
    ]
    task_type = get("task_type")
    structured_task = get("structured_bar_above_99_5")
    if task_type in ("classification", "structured", "structured_output", "extraction"):
        structured_task, struct_src, struct_ev = True, "measured", f"task type {task_type}: format-shaped, narrow"
    else:
        struct_src = src("structured_bar_above_99_5")
        struct_ev = f"task type {show(task_type)}"
    per_1k = get("cost_per_1k_usd")
    wins = [
        _check("a_examples", f"(a) >{bars.full_sft_from:,} high-quality, consistent labeled examples", enough, ev_data,
              src("examples", "label_agreement")),
        _check("b_structured", "(b) structured-output reliability matters more than peak intelligence", structured_task,
              struct_ev, struct_src),
        _check("c_latency", "(c) your latency floor is binding", latency, ev_latency, src("latency_floor_binding")),
        _check("d_cost_per_1k", f"(d) cost per 1k inferences > ${config.cost_per_1k_threshold_usd:.2f} with the base model",
              None if per_1k is None else per_1k > config.cost_per_1k_threshold_usd, f"${show(per_1k, '{:.3f}')}/1k" + caveat(facts, "cost_per_1k_usd"),
              src("cost_per_1k_usd")),
        _check("e_plateau", f"(e) the prompt has plateaued for {config.plateau_days}+ days of disciplined iteration",
              None if plateau is None else (plateau >= config.plateau_days and exhausted is not False),
              f"{show(plateau)} days; {ev_prompt}", src(plateau_src, revisions_src)),
    ]
    changes = get("task_changes_weekly")
    suspected = get("suspected_mislabeled")
    label_ev = f"agreement {show(agreement)}" + (f", {suspected} rows suspected mislabeled" if suspected else "")
    loses = [
        _check("a_few_examples", f"(a) fewer than {bars.coin_flip_below:,} examples",
              None if examples is None else examples < bars.coin_flip_below,
              get("examples_basis") or f"{show(examples)} examples", src("examples")),
        _check("b_inconsistent_labels", f"(b) inconsistent labels (agreement < {bars.agreement_bar:.0%})",
              None if agreement is None else agreement < bars.agreement_bar, label_ev, src("label_agreement")),
        _check("c_iteration_speed", "(c) iteration speed matters more than absolute quality (task changes weekly)",
              changes, "answered" if changes is not None else "not answered", src("task_changes_weekly")),
        _check("d_prompt_not_exhausted", "(d) prompt engineering not actually exhausted",
              None if exhausted is None else not exhausted, ev_prompt, src(revisions_src, "prompt_techniques_tried")),
        _check("e_base_improving", "(e) the underlying base model is still improving", upgrade,
              "answered" if upgrade is not None else "not answered", src("base_upgrade_expected")),
    ]
    return checklist, wins, loses


def decide(facts, get, src, checklist, wins, loses, compare, config: AdviseConfig, bars: Thresholds, catalog: Catalog):
    reasons: list[dict[str, str]] = []

    def because(text: str, source: str) -> None:
        reasons.append({"text": text, "source": source})

    def on(*checks: Check) -> str:
        return join_sources(*(c.source for c in checks))

    lose_true = [c for c in loses if c.answer is True]
    win_true = [c for c in wins if c.answer is True]
    because(f"{len(win_true)} of 5 win signals present, {len(lose_true)} of 5 lose signals present "
            f"({sum(c.answer is None for c in (*wins, *loses))} unknown)", on(*wins, *loses))
    for check in lose_true:
        because(f"lose signal {check.question}: {check.evidence}", check.source)
    examples = get("examples")
    if get("examples_basis"):
        because(f"examples counted: {get('examples_basis')}", src("examples"))
    gain, significant = get("finetune_gain"), get("finetune_significant")
    doubling = get("projected_gain_doubling")
    more_data = doubling is not None and doubling > config.data_gain_margin
    if doubling is not None:
        because(f"the learning curve projects {doubling:+.3f} from doubling the data"
                + (": more data would help, the fine-tune has not plateaued" if more_data else ""), "projected")
    unfinished = get("finetune_still_improving") is True

    if get("classic_matches"):
        because(f"the classic classifier ({get('classic')}) matches the best LLM candidate: "
                "no LLM fine-tune (or LLM at all) is needed for this classification task", "measured")
        return "classic", VERDICTS["classic"], reasons
    if gain is not None:
        if significant and gain > 0:
            because(f"the fine-tune ({get('best_finetuned')}) beats the best prompt ({get('best_prompt')}) by "
                    f"{gain:+.3f}, significant ({facts['finetune_significant'].detail})", "measured")
            if checklist[1].answer and len(win_true) == 5 and not lose_true:
                because("all five win signals and 10k+ consistent examples: full SFT can move further than LoRA", on(*wins, checklist[1]))
                return "full-sft", VERDICTS["full-sft"], reasons
            if get("teacher_available") and examples is not None and examples < bars.coin_flip_below:
                because(f"only {examples:,} examples and a teacher does the task: distill more training data", "answered")
                return "distill", VERDICTS["distill"], reasons
            if lose_true:
                because("measured evidence outweighs the ROI guide's priors here, but treat the lose signals as risks", on(*lose_true))
            return "lora", "Fine-tune with LoRA (it beat the prompts on your eval set)", reasons
        because(f"the fine-tune ({get('best_finetuned')}) does not significantly beat the best prompt "
                f"({gain:+.3f}; {facts['finetune_significant'].detail if 'finetune_significant' in facts else 'no test'})",
                "measured")
        if unfinished or more_data:
            # An unfinished fine-tune losing to the prompt says little about fine-tuning: finish it first.
            if unfinished:
                because(f"the fine-tune was still improving at its last evaluation "
                        f"({facts['finetune_still_improving'].detail}): its result against the prompt is not "
                        "counted as a lose signal", "measured")
                because("next: run a budgeted search (`tunewise train --search`) or add training data", "measured")
                return "lora", "Finish the fine-tune: run a budgeted search (`tunewise train --search`) or add data", reasons
            because("next: collect or distill more training data and train again; more data would help", "projected")
            return "lora", "Add training data: the learning curve says more data would help the fine-tune", reasons
        if get("retrieval_helps") or get("needs_fresh_knowledge"):
            because("retrieval few-shot beats plain prompts" if get("retrieval_helps") else
                    "answers depend on changing facts: ground them with retrieval", src("retrieval_helps", "needs_fresh_knowledge"))
            return "retrieval", VERDICTS["retrieval"], reasons
        return "prompt", VERDICTS["prompt"], reasons
    if len(lose_true) >= 2:
        because("two or more lose signals: stop, ship the prompt, revisit in 6 months", on(*lose_true))
        if get("retrieval_helps") or get("needs_fresh_knowledge"):
            return "retrieval", VERDICTS["retrieval"], reasons
        return "prompt", VERDICTS["prompt"], reasons
    if get("retrieval_helps") or get("needs_fresh_knowledge"):
        because("retrieval few-shot beats plain prompts on the eval set" if get("retrieval_helps")
                else "answers depend on changing facts: retrieval grounds them without training",
                src("retrieval_helps", "needs_fresh_knowledge"))
        return "retrieval", VERDICTS["retrieval"], reasons
    if get("teacher_available") and (examples is None or examples < bars.coin_flip_below):
        because("a teacher already does the task and labeled data is short: distillation skips human labels", "answered")
        return "distill", VERDICTS["distill"], reasons
    if checklist[0].answer is False:
        because("checklist step 1: prompt iteration is not exhausted (the ROI guide: two more weeks of prompts "
                "save $10-25k)", checklist[0].source)
        return "prompt", VERDICTS["prompt"], reasons
    if len(win_true) == 5 and checklist[5].answer:
        because("all five win signals present and LoRA or distillation already tried", on(*wins, checklist[5]))
        return "full-sft", VERDICTS["full-sft"], reasons
    cost, cost_source = _experiment_cost(get, src, catalog, config)
    because(f"no measured fine-tune yet: a LoRA experiment answers 'does fine-tuning help at all?' ({cost})", cost_source)
    return "lora", VERDICTS["lora"], reasons


def _experiment_cost(get, src, catalog: Catalog, config: AdviseConfig) -> tuple[str, str]:
    """One LoRA run's cost on the open-model row, from the audit's billable tokens and the catalog; else unknown."""
    tokens = get("billable_tokens_per_epoch")
    row = catalog.get(config.open_model_row)
    estimate = catalog.training_estimate(row, tokens * config.epochs) if tokens is not None else None
    if estimate is None:
        why = "no audit counted the training tokens" if tokens is None else f"{row.name} has no training price"
        return f"its cost is unknown: {why}", src("billable_tokens_per_epoch")
    return (f"one run on {row.name} costs about ${estimate.usd:,.2f}: {config.epochs} epochs (advise.epochs) x "
            f"{estimate.basis}" + (" (example rate, edit it)" if row.example else ""),
            join_sources("catalog", "assumed", src("billable_tokens_per_epoch")))


def caveat(facts: dict[str, Fact], key: str) -> str:
    """'; tokens counted by ...' when the fact was measured on another model than the one it is applied to."""
    fact = facts.get(key)
    return f"; tokens {fact.transfer}" if fact is not None and fact.transfer else ""


def show(value: Any, fmt: str = "{}") -> str:
    if value is None:
        return "?"
    if isinstance(value, float) and fmt == "{}":
        return f"{value:.2f}"
    return fmt.format(value)
