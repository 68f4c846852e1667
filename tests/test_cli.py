from dataclasses import replace
from pathlib import Path

from salt_budget.cli import main
from salt_budget.experiment import ExperimentConfig, load_experiment

ROOT = Path(__file__).resolve().parents[1]


def test_data_synth_writes_a_set_and_refuses_a_full_folder(tmp_path, capsys):
    out = tmp_path / "set"
    args = ["data", "synth", "--out", str(out), "--train", "4", "--val", "2", "--frames", "8", "--size", "32",
            "--workers", "1", "scene.noise_std=2"]
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
    code = main(["data", "check", "data.dataset=lists", f"data.train_list={listing}", "data.workers=0"])
    out = capsys.readouterr().out
    assert code == 1 and "1 of 2 clips usable" in out and "missing" in out
