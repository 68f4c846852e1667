from dataclasses import replace
from pathlib import Path

import pytest

from salt_budget.cli import main
from salt_budget.experiment import ExperimentConfig, load_experiment

ROOT = Path(__file__).resolve().parents[1]


def test_data_synth_writes_a_set_and_refuses_a_full_folder(tmp_path, capsys):
    out = tmp_path / "set"
    args = ["data", "synth", "--out", str(out), "--train", "4", "--val", "2", "--frames", "8", "--size", "32",
            "--processes", "1", "scene.noise_std=2"]
    assert main(args) == 0
    assert "wrote 6 clips" in capsys.readouterr().out
    assert len(list((out / "train").glob("*.mp4"))) == 4 and (out / "meta.json").is_file()
    assert main(args) == 2
    assert "is not empty" in capsys.readouterr().err


def test_bad_override_is_one_clear_line(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "scene.noise_sdt=2"]) == 2
    err = capsys.readouterr().err
    assert "noise_std" in err and "Traceback" not in err


def test_tiny_experiment_file_spells_out_the_defaults():
    assert load_experiment(ROOT / "experiments" / "tiny.yaml") == ExperimentConfig()


def test_quick_experiment_is_the_tiny_default_shrunk():
    quick = load_experiment(ROOT / "experiments" / "quick.yaml")
    assert (quick.name, quick.data.frames, quick.data.synthetic.train, quick.probe.epochs) == ("quick", 8, 400, 10)
    assert quick.teacher.encoder == ExperimentConfig().teacher.encoder  # the rest keeps the tiny values
    # A partial section keeps its stage's defaults: the baseline stays on the V-JEPA 2 recipe.
    assert quick.vjepa2.optim == replace(ExperimentConfig().vjepa2.optim, warmup_steps=10)
    assert quick.student.optim == replace(ExperimentConfig().student.optim, warmup_steps=10)


def test_data_check_lists_a_missing_clip(tmp_path, capsys, small_synth):
    _, folder = small_synth
    listing = tmp_path / "list.csv"
    listing.write_text(f"{folder / 'train' / '000000.mp4'} 1 2\n{tmp_path / 'gone.mp4'} 0 0\n")
    val = tmp_path / "val.csv"
    val.write_text(f"{folder / 'val' / '000000.mp4'} 1 2\n")
    code = main(["data", "check", "data.dataset=lists", f"data.train_list={listing}", f"data.val_list={val}",
                 "data.workers=0"])
    out = capsys.readouterr().out
    # Pre-training reads the train list, which the probe's train split is too: decoded once, named for both.
    assert code == 1 and out.count("1 of 2 clips usable") == 1 and "1 of 1 clips usable" in out
    assert f"{listing}:2: missing" in out and "the same list as pre-training" in out


def _commands(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


def test_every_command_has_a_description_and_every_option_its_default():
    from salt_budget.cli import build_parser

    commands = dict(_commands(build_parser()))
    assert {("data", "prepare"), ("data", "check"), ("data", "bench"), ("sweep",), ("study",)} <= set(commands)
    for name, parser in commands.items():
        assert parser.description, name
        for action in parser._actions:
            if action.option_strings and action.nargs != 0:
                assert action.help and "default" in action.help, (name, action.option_strings)


def test_one_cli_shape_the_experiment_file_positional_everywhere_and_budgets_as_the_plan_prints_them(capsys):
    from salt_budget.cli import build_parser

    parser = build_parser()
    experiment = str(ROOT / "experiments" / "quick.yaml")
    for argv in (["sweep", experiment, "--total-steps", "240k"], ["sweep", "--experiment", experiment,
                                                                   "--total-steps", "240000"],
                 ["sweep", "--total-steps", "240k", experiment]):
        args, _ = parser.parse_known_args(argv)
        from salt_budget.commands.common import split_experiment

        assert split_experiment(args)[0] == experiment and args.total_steps == (240000,), argv
    for command in (["data", "check"], ["bench"], ["train", "teacher"], ["probe", "random"]):
        args, _ = parser.parse_known_args([*command, "--experiment", experiment])
        assert split_experiment(args)[0] == experiment
    assert parser.parse_known_args(["sweep", "--total-steps", "1.2M"])[0].total_steps == (1200000,)
    assert parser.parse_known_args(["sweep", "--total-flops", "1.5e21"])[0].total_flops == (1.5e21,)
    assert parser.parse_known_args(["sweep", "--total-flops", "1500E"])[0].total_flops == (1.5e21,)
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--total-steps", "2.5"])
    assert exit_.value.code == 2 and "a step count must be a whole number" in capsys.readouterr().err
    assert parser.parse_known_args(["bench", "--batch-size", "4"])[0].batch == 4
    assert parser.parse_known_args(["probe", "random", "--json", "x.json"])[0].out == "x.json"


def test_a_wrong_resource_flag_fails_the_dry_run_too(capsys):
    assert main(["sweep", "--total-steps", "24", "--workers-per-trial", "0", "--dry-run"]) == 2
    assert "--workers-per-trial 0 must be >= 1" in capsys.readouterr().err


def test_progress_on_a_log_is_a_line_every_tenth_or_thirty_seconds():
    import io

    from trainers.progress import LogProgress, progress

    stream, now = io.StringIO(), [0.0]
    bar = LogProgress(total=1000, desc="decoding", unit="clip", stream=stream, clock=lambda: now[0])
    for _ in range(1000):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1] == "decoding: 1000/1000 clip (100%) in 0 s" and "\r" not in stream.getvalue()
    stream, now = io.StringIO(), [0.0]
    with LogProgress(total=10**6, desc="slow", stream=stream, clock=lambda: now[0]) as bar:
        for second in range(100):
            now[0] = second
            bar.update()
    assert len(stream.getvalue().splitlines()) == 4  # at 30, 60 and 90 s, and the last
    assert isinstance(progress(range(3), desc="x", stream=io.StringIO()), LogProgress)
