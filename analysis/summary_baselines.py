"""summary.md's sections on SALT against its baselines: who beats whom at equal compute, each baseline beside
SALT's best allocation, and collapse."""

from __future__ import annotations

import pandas as pd

from analysis import reference
from analysis.findings import Findings
from analysis.markdown import NA, budget_name, missing, num, pct, steps, table
from analysis.results import Metric, Results, baseline_label, equals, is_baseline
from analysis.schema import COLLAPSE_STD
from analysis.stats import ONE_SEED, describe, from_columns, noise_words, tally
from analysis.summary_allocation import headline


def _collapsed(value: object) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def versus(r: pd.Series, label: str = "") -> str:
    """SALT's best allocation against a baseline at the same budget, in accuracy and in FLOPs."""
    budget = f"Budget {budget_name(r['budget'])}" + (f" ({label})" if label else "")
    base = f"{r['baseline']}'s {pct(r['accuracy'])}% at {r['flops_total']:.3g} FLOPs" + (
        " (collapsed)" if _collapsed(r.get("collapsed")) else "")
    if missing(r["salt_accuracy"]):
        return f"{budget}: {base}; no finished SALT student of this budget and seed to set against it."
    gap = pct(abs(r["gap"]))
    versus = "level with it" if gap == pct(0) else f"{gap} points {'above' if r['gap'] > 0 else 'below'}"
    over_seeds = from_columns(r)
    if over_seeds.n < 2:  # one seed: the gap is said, and that it is not tested
        versus, tail = f"{versus} ({noise_words(over_seeds)})", ""
    else:
        tail = f"; over seeds, SALT's allocation best on average against it: {describe(over_seeds)}"
    return (f"{budget}: SALT's best allocation {r['salt_allocation']} reaches {pct(r['salt_accuracy'])}% "
            f"at {r['salt_flops_total']:.3g} FLOPs against {base}: {versus}, at {r['flops_ratio']:.2f}x its "
            f"FLOPs{tail}.")


def teacher_verdicts(findings: Findings, metric: Metric) -> str:
    """The students against their teachers per allocation over seeds (findings.versus_teacher), in words."""
    table = findings.versus_teacher
    table = table[(table["task"] == metric.name) & (table["n"] > 0)]
    if table.empty:
        return "no allocation has a probed teacher to compare over seeds"
    if (table["verdict"] == ONE_SEED).all():
        return "one seed per allocation: no student is tested against its teacher beyond the seed noise"
    return (f"per allocation over seeds ({len(table)} allocations), student against teacher: "
            f"{tally(table, above='(student higher)', below='(teacher higher)')}")


def beats_section(findings: Findings, metrics: list[Metric]) -> list[str]:
    pairs = findings.pairs
    lines = ["", "## Do students beat their teachers?", ""]
    for metric in metrics:
        panel = pairs[pairs["task"] == metric.name]
        known = panel.dropna(subset=["teacher_accuracy", "student_accuracy"])
        if known.empty:
            lines.append(f"- {metric.label}: no final student with a probed teacher: the data cannot say.")
            continue
        ties = int((known["student_accuracy"] == known["teacher_accuracy"]).sum())
        missing_teacher = len(panel) - len(known)
        lines.append(f"- {metric.label}: {int(known['beats_teacher'].sum())} of {len(known)} final students beat their "
                     f"teacher (strictly higher accuracy), {ties} tie{'s' * (ties != 1)}" +
                     (f"; {missing_teacher} have no probed teacher in the table" if missing_teacher else "") +
                     f"; {teacher_verdicts(findings, metric)}.")
    alone = ", ".join(f"{steps(t.teacher_steps)} {t.avg_of_4}" for t in reference.TEACHERS_ALONE)
    return lines + [f"- Paper: {reference.STUDENTS_BEAT_TEACHERS}; its ViT-L teachers alone (Fig. 8, avg of 4): {alone}."]


def baselines_section(results: Results, findings: Findings, metrics: list[Metric]) -> list[str]:
    comparison = findings.baselines
    if comparison.empty:
        return []
    lines = ["", "## Baselines: SALT against them at the same budget", "",
             "Each baseline trains the student's encoder for the whole budget N (matched total steps) on the same data "
             "and masks; its FLOPs are its own, the EMA encoder's forward (2ND on every token) included. SALT: the "
             "most accurate final student of the same budget and seed (teacher + student FLOPs). Gap: SALT - "
             "baseline in points; FLOPs: SALT's / the baseline's.", ""]
    label = {m.name: m.label for m in metrics}
    rows = [[r["budget"], label[r["task"]], r["baseline"], pct(r["accuracy"]), f"{r['flops_total']:.3g}",
             NA if missing(r["salt_accuracy"]) else r["salt_allocation"], pct(r["salt_accuracy"]),
             NA if missing(r["salt_flops_total"]) else f"{r['salt_flops_total']:.3g}",
             NA if missing(r["gap"]) else f"{r['gap'] * 100:+.1f}", num(r["flops_ratio"], ".2f"),
             describe(from_columns(r))]
            for _, r in comparison.iterrows()]
    lines += [table(["budget", "task", "baseline", "accuracy", "FLOPs", "SALT's best allocation", "accuracy", "FLOPs",
                     "gap (pts)", "FLOPs SALT / baseline", "SALT best on average - baseline, over seeds"], rows), ""]
    head = headline(metrics)
    for _, r in comparison[comparison["task"] == head.name].iterrows():
        cheaper = ("no student used no more compute" if missing(r["cheaper_accuracy"]) else
                   f"the best student at no more compute (any budget) is {r['cheaper_allocation']}, "
                   f"{pct(r['cheaper_accuracy'])}% at {r['cheaper_flops_total']:.3g} FLOPs")
        lines.append(f"- {versus(r, head.label)} {cheaper[0].upper()}{cheaper[1:]}.")
    paper = [_paper_baseline()] if equals(results.rows, "role", reference.PAPER_BASELINE).any() else []
    return lines + _collapse(results) + paper


def _collapse(results: Results) -> list[str]:
    """The collapse signal of every baseline run: target std at its final checkpoint, RankMe at each probed one."""
    runs = results.ok[is_baseline(results.ok)]
    if "target_std" not in runs or runs["target_std"].isna().all():
        return ["- Collapse: this table has no target std (written before the baseline logged it)."]
    runs = runs.assign(label=baseline_label(runs)).sort_values(["label", "budget", "step"], kind="stable")
    lines = [f"- Collapse signal: target std, the per-channel standard deviation of the layer-normalised EMA targets "
             f"over a batch's tokens, averaged over channels (0 when every token has the same target; mean over the "
             f"last 10% of logged steps), and RankMe of the probed features; a run with target std below "
             f"{COLLAPSE_STD:g} is flagged `collapsed` in the results table."]
    flagged = []
    for (name, budget), run in runs.groupby(["label", "budget"], sort=False):
        final = run.iloc[-1]
        rankme = ", ".join(f"{r['rankme']:.1f} (step {r['step']})" for _, r in run.iterrows())
        flagged += [f"{name} N{budget}"] if _collapsed(final.get("collapsed")) else []
        lines.append(f"  - {name} N{budget}: target std {num(final['target_std'])} at step {final['step']}; RankMe "
                     f"{rankme}{'; COLLAPSED' if _collapsed(final.get('collapsed')) else ''}.")
    lines.append(f"- Collapsed: {', '.join(flagged)}: their accuracies measure a collapsed encoder." if flagged
                 else f"- No baseline run collapsed (every final target std is at least {COLLAPSE_STD:g}).")
    return lines


def _paper_baseline() -> str:
    row = reference.vjepa2(240_000) or {}
    benchmarks = ("K400", "SSv2", reference.TWO_TASK_MEAN, "IN1k", "COIN", "avg of 4")  # each task, then its means
    return (f"- Paper (Table 16): V-JEPA 2 at 240k steps, {row['flops_total']:.3g} FLOPs: " + ", ".join(
        f"{b} {row[b]:g}" for b in benchmarks)
        + "; every SALT allocation there uses less compute and reaches more.")
