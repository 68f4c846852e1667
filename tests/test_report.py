"""`salt-budget report` end to end on the fixture table: the folder it writes, the self-contained
HTML, CSVs equal to the findings, several runs as one report, PNG notes, and one-line CLI errors."""

import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from fixtures.results_table import results_frame, write_run

from analysis import png
from analysis.figures import all_figures
from analysis.findings import compute
from analysis.report import write_report
from analysis.results import from_frame, load_results, size_order
from salt_budget.cli import main

FIGURES = ("pareto", "allocation", "teacher_size", "loss_accuracy", "teacher_metrics", "student_vs_teacher")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("runs") / "fixture", results_frame(baselines=True))
    return run, write_report([run], formats={"html", "md"})


def test_the_report_folder(report):
    run, written = report
    assert written.out == run / "report"
    names = {p.relative_to(written.out).as_posix() for p in written.files}
    assert {"report.html", "summary.md", "tables/pareto.csv", "tables/allocation.csv", "tables/loss_fits.csv"} <= names
    assert all(p.is_file() for p in written.files)


def test_html_holds_every_figure_and_fetches_nothing(report):
    _, written = report
    page = (written.out / "report.html").read_text()
    for name in FIGURES:
        assert f'id="figure-{name}"' in page and f'Plotly.newPlot(                        "figure-{name}"' in page
    assert "plotly.js v" in page and page.count("* plotly.js v") == 1  # inlined once
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # nothing loaded from a file or the network
    assert "CUDA out of memory" in page  # the summary, with the failed unit, is on the page
    # The baseline on the Pareto and loss figures, its collapsed run marked.
    assert "V-JEPA 2 baseline (collapsed)" in page and "V-JEPA 2 small baseline (its own loss)" in page


def test_csvs_are_the_findings(report):
    run, written = report
    results = from_frame(results_frame(baselines=True))
    for name, table in compute(results, results.metrics()).tables().items():
        saved = pd.read_csv(written.out / "tables" / f"{name}.csv")
        assert list(saved.columns) == list(table.columns) and len(saved) == len(table), name
        for column in table:
            mine, theirs = table[column].reset_index(drop=True), saved[column]
            if pd.api.types.is_numeric_dtype(mine) and not pd.api.types.is_bool_dtype(mine):
                np.testing.assert_allclose(theirs.astype(float), mine.astype(float), rtol=1e-12,
                                           err_msg=f"{name}.{column}")
            else:
                as_text = [[str(v) for v in values.astype(object).fillna("")] for values in (theirs, mine)]
                assert as_text[0] == as_text[1], f"{name}.{column}"


def test_summary_quotes_findings_and_the_paper(report):
    _, written = report
    summary = (written.out / "summary.md").read_text()
    assert "| 240 | small → small | appearance | T40 (share 0.167) | 59.8 |" in summary
    assert "0.2 (60.0), inside the tested range" in summary  # the fixture's known optimum
    assert "appearance: 10 of 12 final students beat their teacher" in summary
    assert "| student | student-N240_T10-small_S230-small_seed0 |" in summary and "CUDA out of memory" in summary
    assert "R² 0.951 (80k teacher), 0.972 (40k teacher), 0.984 (20k teacher)" in summary
    # The task average of two tasks beside the paper's K400 + SSv2 mean ((76.3 + 71.7) / 2), not its average of four.
    assert "| 240k | ViT-L → ViT-L | K400+SSv2 mean (vs task average) | T40k (share 0.167) | 74.0 | 0.3 |" in summary
    assert "avg of 4 (vs task average)" not in summary
    # The paper's rows with its avg of 4 only are listed as such: the three-stage rows and the teachers alone.
    assert ("- Paper, 240k, three stages (a SALT student as the next teacher; avg of 4 only, not comparable with the "
            "tasks above): T80k + S80k, then S80k: 78.5 at 1.193e+21 FLOPs; T40k + S80k, then S120k: 78.6 at "
            "1.311e+21 FLOPs; the best two stages, T40k + S200k: 78.2.") in summary
    assert "its ViT-L teachers alone (Fig. 8, avg of 4): 20k 66.8, 40k 70.4, 80k 72.5." in summary
    # V-JEPA 2's row task by task, its K400 + SSv2 mean beside its avg of 4.
    assert ("- Paper (Table 16): V-JEPA 2 at 240k steps, 1.9e+21 FLOPs: K400 73.3, SSv2 68.4, K400+SSv2 mean 70.85, "
            "IN1k 73.7, COIN 83.1, avg of 4 74.6;") in summary


def test_several_runs_make_one_report(tmp_path):
    frame = results_frame()
    teachers = frame["role"] == "teacher"
    first = write_run(tmp_path / "n120", frame[teachers | (frame["budget"] == 120)])
    second = write_run(tmp_path / "n240", frame[teachers | (frame["budget"] == 240)])  # the same teachers again
    written = write_report([first, second], out=tmp_path / "both", task="motion", formats={"md"})
    summary = (tmp_path / "both" / "summary.md").read_text()
    assert "Budgets (total steps T + S): 120, 240" in summary
    assert "6 rows appear in more than one run (same unit and checkpoint) and are counted once" in summary
    assert set(pd.read_csv(written.out / "tables" / "pareto.csv")["task"]) == {"motion"}
    assert not (tmp_path / "both" / "report.html").exists()


def test_a_baseline_role_is_drawn_and_compared(tmp_path):
    frame = results_frame()
    # A sparse row: no loss, no collapse signal.
    baseline = {"schema_version": 1, "sweep": "fixture", "unit_key": "vjepa2-240", "role": "vjepa2", "budget": 240,
                "student_size": "small", "seed": 0, "step": 240, "is_final": True, "flops_total": 5e11,
                "status": "ok", "acc_appearance": 0.5, "acc_motion": 0.4, "acc_mean": 0.45, "chance_appearance": 0.1,
                "chance_motion": 0.125}
    frame = pd.concat([frame, pd.DataFrame([baseline]).astype({c: frame[c].dtype for c in baseline})],
                      ignore_index=True)
    written = write_report([write_run(tmp_path / "run", frame)], task="appearance", formats={"md", "html"})
    summary = (written.out / "summary.md").read_text()
    assert ("- Budget 240 (appearance): SALT's best allocation N240_T40-large_S200-small_seed0 reaches 61.8% at "
            "3.6e+11 FLOPs against V-JEPA 2 small's 50.0% at 5e+11 FLOPs: 11.8 points above (seed 0 alone; one seed: not "
            "tested against noise), at 0.72x its FLOPs. The "
            "best student at no more compute (any budget) is N120_T20-large_S100-small_seed0, 61.8% at 1.8e+11 FLOPs."
            in summary)
    assert "- Collapse: this table has no target std" in summary and "nan" not in summary.lower()
    pareto = pd.read_csv(written.out / "tables" / "pareto.csv")
    assert pareto["role"].value_counts().to_dict() == {"student": 12, "teacher": 6, "vjepa2": 1}
    assert "vjepa2" not in set(pd.read_csv(written.out / "tables" / "pairs.csv")["role"])


def test_a_table_of_teachers_only_reports_what_it_can(tmp_path):
    frame = results_frame()
    written = write_report([write_run(tmp_path / "run", frame[frame["role"] == "teacher"])], formats={"md", "html"})
    summary = (written.out / "summary.md").read_text()
    assert "No finished student: the data cannot say how to split the budget." in summary
    assert "- motion: no final student with a probed teacher: the data cannot say." in summary
    allocation = pd.read_csv(written.out / "tables" / "allocation.csv")
    assert allocation.empty and {"budget", "best_share", "optimum_share", "task"} <= set(allocation.columns)


def test_png_notes_instead_of_failing(report, monkeypatch, tmp_path):
    monkeypatch.setattr(png.importlib.util, "find_spec", lambda name: None)
    assert "kaleido is not installed" in png.unavailable()
    monkeypatch.setattr(png.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(png, "find_chromium", lambda: None)
    monkeypatch.setattr(png, "_legacy_kaleido", lambda: False)
    assert "none was found" in png.unavailable()
    monkeypatch.setattr(png, "_legacy_kaleido", lambda: True)  # kaleido 0.2 brings its own Chromium
    assert png.unavailable() is None
    monkeypatch.setattr(png, "_legacy_kaleido", lambda: False)

    def broken(figure, path):
        raise RuntimeError("browser closed unexpectedly\nmore detail")

    monkeypatch.setattr(png, "find_chromium", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(png, "write_png", broken)
    written = write_report([report[0]], out=tmp_path / "c", formats={"png"})
    assert written.notes == ["PNG figures stopped at pareto: browser closed unexpectedly"]
    assert not list((tmp_path / "c" / "figures").iterdir())


@pytest.mark.skipif(png.unavailable() is not None, reason="no kaleido able to render here")
def test_png_figures_are_images(report, tmp_path):
    written = write_report([report[0]], out=tmp_path / "p", formats={"png"})
    pngs = sorted((tmp_path / "p" / "figures").glob("*.png"))
    results = load_results([report[0]])
    metrics = results.metrics()
    figures = all_figures(compute(results, metrics), metrics, size_order(results.rows), {}, results=results)
    assert not written.notes and len(pngs) == len(figures) > 0  # one PNG per figure of the HTML
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000 for path in pngs)


def test_cli_writes_the_report(report, tmp_path, capsys):
    run, _ = report
    assert main(["report", str(run), "--out", str(tmp_path / "r"), "--format", "md,html"]) == 0
    out = capsys.readouterr().out
    assert f"report written to {tmp_path / 'r'}" in out and "report.html" in out


@pytest.mark.parametrize("case, message", [
    ("no-table", "has no results.parquet"),
    ("old-schema", "has schema version 0, this report reads version 1: rerun the sweep"),
    ("empty", "has no rows"),
    ("task", "no task 'colour' in the results; the tasks are: appearance, motion, mean"),
    ("format", "unknown --format pdf: choose from html, png, md"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, case, message):
    frame = results_frame()
    run = tmp_path / "run"
    args = ["report", str(run)]
    if case == "no-table":
        run.mkdir()
    else:
        write_run(run, {"old-schema": frame.assign(schema_version=0), "empty": frame.iloc[:0]}.get(case, frame))
    args += {"task": ["--task", "colour"], "format": ["--format", "pdf"]}.get(case, [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.skipif(png.find_chromium() is None, reason="no Chrome or Chromium on this machine")
def test_report_renders_in_a_headless_browser(report):
    _, written = report
    done = subprocess.run([png.find_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                           "--virtual-time-budget=10000", "--dump-dom", (written.out / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120, check=True)
    dom = done.stdout
    for name in FIGURES:  # plotly draws each figure as an SVG inside its div
        assert re.search(rf'id="figure-{name}"[^>]*>.*?class="main-svg"', dom, re.S), name
    # The page's console stays empty: Chromium logs every console message and uncaught error as a CONSOLE line.
    assert [line for line in done.stderr.splitlines() if "CONSOLE" in line] == []
    assert "<table>" in dom and "<h3>At a glance" in dom  # the findings, rendered


def test_a_sweep_of_flops_budgets_is_reported_in_flops(tmp_path):
    frame = results_frame()
    students = frame["role"] == "student"
    # The same rows as a FLOPs sweep would write them: budget F, budget_kind "flops".
    frame.loc[students, "budget"] = frame.loc[students, "budget"].astype(float) * 1e16
    frame.loc[students, "budget_kind"] = "flops"
    written = write_report([write_run(tmp_path / "flops", frame)], out=tmp_path / "report", formats={"md"})
    summary = (written.out / "summary.md").read_text()
    assert "Budgets (in FLOPs: each allocation's T and S split the budget by the FLOPs model): 1.2e+18 FLOPs" in summary
    assert "- Budget 2.4e+18 FLOPs: best is" in summary


def test_the_findings_on_the_page_are_html_not_markdown(report):
    from analysis.html import findings_html

    _, written = report
    page = (written.out / "report.html").read_text()
    findings = page[page.index('<section class="findings">'):page.index("</section>")]
    assert "<h2>salt-budget report</h2>" in findings and "<h3>At a glance" in findings  # the page's title is the h1
    assert findings.count("<table>") >= 2 and "<th>budget</th>" in findings
    assert "|---|" not in findings and "<pre" not in findings
    # Text from the table (a failure reason, a path) shows as text, never as markup.
    assert findings_html("- reason: <script>alert(1)</script> & co") == (
        "<ul>\n<li>reason: &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</li>\n</ul>")
