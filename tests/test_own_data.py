"""A user's own data, as the README's "Your own clips" configures it (a data.pretrain mixture and probe.tasks on
their own lists): every data command and the sweep's dry run accept it, and a missing or malformed list fails
each of them in seconds with the file and line; the disk a run folder will fill is predicted against a real
checkpoint."""

import shutil
from pathlib import Path

import pytest

from salt_budget.cli import main
from tests.test_sweep_run import MICRO

NANO = ["--teacher-sizes", "nano", "--student-size", "nano", "--teacher-steps", "4", "--probe-points", "2"]


@pytest.fixture
def own_data(small_synth, tmp_path):
    """Two pre-training lists (one path with a space, quoted; V-JEPA's dummy label column) and one probe task
    on its own train / val lists, labelled by the synthetic set's appearance column."""
    _, folder = small_synth
    clips = tmp_path / "clips"
    shutil.copytree(folder / "train", clips / "train")
    shutil.copytree(folder / "val", clips / "val")
    shutil.copy(clips / "train" / "000000.mp4", clips / "train" / "my clip.mp4")
    train = [line.split() for line in (folder / "train.csv").read_text().splitlines()]
    val = [line.split() for line in (folder / "val.csv").read_text().splitlines()]
    (tmp_path / "mix_a.csv").write_text('"clips/train/my clip.mp4" 0\n' + "".join(
        f"clips/train/{Path(path).name} 0\n" for path, *_ in train[:6]))
    (tmp_path / "mix_b.csv").write_text("".join(f"clips/train/{Path(path).name}\n" for path, *_ in train[6:]))
    (tmp_path / "task_train.csv").write_text("".join(f"clips/train/{Path(p).name},{a}\n" for p, a, _ in train))
    (tmp_path / "task_val.csv").write_text("".join(f"clips/val/{Path(p).name}\t{a}\n" for p, a, _ in val))
    experiment = tmp_path / "mine.yaml"
    experiment.write_text(
        "name: mine\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
        "data:\n"
        "  dataset: lists\n"
        "  pretrain:\n"
        f"    - {{path: {tmp_path / 'mix_a.csv'}, weight: 0.7}}\n"
        f"    - {{path: {tmp_path / 'mix_b.csv'}, weight: 0.3}}\n"
        "probe:\n"
        "  tasks:\n"
        f"    shapes: {{train_list: {tmp_path / 'task_train.csv'}, val_list: {tmp_path / 'task_val.csv'}, "
        "num_classes: 10}\n"
    )
    micro = [item for item in MICRO if not item.startswith("data.synthetic")]
    return experiment, micro


def test_every_data_command_and_the_dry_run_accept_a_mixture_and_task_lists(own_data, capsys):
    experiment, micro = own_data
    assert main(["data", "prepare", str(experiment), *micro]) == 0
    out = capsys.readouterr().out
    assert "pre-training list 1 (weight 0.7): 7 clips" in out and "pre-training list 2 (weight 0.3): 6 clips" in out
    assert "probe task shapes (10 classes), train: 12 clips" in out and "val: 6 clips" in out
    assert main(["data", "check", str(experiment), *micro]) == 0
    out = capsys.readouterr().out
    assert "every clip of 4 list(s) usable" in out and "7 of 7 clips usable" in out
    assert main(["data", "bench", str(experiment), "--workers", "0", "--batches", "1", "--batch-size", "2",
                 *micro]) == 0
    assert "training augmentation" in capsys.readouterr().out
    assert main(["data", "bench", str(experiment), "--split", "val", "--workers", "0", "--batches", "1",
                 "--batch-size", "2", *micro]) == 0  # the task's own val list
    assert "evaluation crop" in capsys.readouterr().out
    assert main(["sweep", str(experiment), "--total-steps", "24", *NANO, "--dry-run", *micro]) == 0
    out = capsys.readouterr().out
    assert "data: pre-training list 1 (weight 0.7): 7 clips" in out and "disk: about" in out


@pytest.mark.parametrize("fault", ["missing list", "bad label", "missing clip"])
def test_a_wrong_list_fails_every_command_with_its_file_and_line(own_data, capsys, fault):
    experiment, micro = own_data
    folder = experiment.parent
    if fault == "missing list":
        experiment.write_text(experiment.read_text().replace("mix_b.csv", "gone.csv"))
        expected = f"clip list '{folder / 'gone.csv'}' does not exist"
    elif fault == "bad label":
        text = (folder / "task_val.csv").read_text().splitlines()
        text[2] = text[2].split("\t")[0] + "\t12"
        (folder / "task_val.csv").write_text("\n".join(text) + "\n")
        expected = f"{folder / 'task_val.csv'}:3: label 12 is not a class of task 'shapes' 0..9"
    else:
        (folder / "clips" / "train" / "my clip.mp4").unlink()
        expected = f"{folder / 'mix_a.csv'}:1: clip"
    commands = [["data", "prepare"], ["sweep", "--total-steps", "24", *NANO, "--dry-run"]]
    if fault != "missing clip":  # check and bench decode: a missing clip is what check reports, not a list error
        commands += [["data", "check"], ["data", "bench", "--workers", "0", "--batches", "1"]]
    for command in commands:
        assert main([*command, str(experiment), *micro]) == 2, command
        assert expected in capsys.readouterr().err, command


def test_the_disk_estimate_of_a_checkpoint_is_the_file_a_run_writes(small_synth, tmp_path):
    """Weights and AdamW's two moments in fp32: the estimate is within 5% of the file for each stage kind (at this nano size the
    file's per-tensor overhead is 3%; at ViT sizes it vanishes)."""
    from salt_budget.experiment import load_experiment
    from trainers.stages import student_checkpoint_bytes, teacher_checkpoint_bytes
    from trainers.vjepa2 import vjepa2_checkpoint_bytes
    from trainers.train import train_student, train_teacher, train_vjepa2

    cfg = load_experiment(None, [*MICRO, "data.dataset=lists", f"data.train_list={small_synth[1] / 'train.csv'}",
                                 f"data.val_list={small_synth[1] / 'val.csv'}", *(
                                     f"{s}.encoder.preset=nano" for s in ("teacher", "student", "vjepa2")), *(
                                     f"{s}.optim.steps=2" for s in ("teacher", "student", "vjepa2"))])
    teacher = train_teacher(cfg.teacher, cfg.data, tmp_path / "t", seed=0, progress=False)
    cfg.student.teacher_checkpoint = str(teacher)
    student = train_student(cfg.student, cfg.data, tmp_path / "s", seed=0, progress=False)
    vjepa2 = train_vjepa2(cfg.vjepa2, cfg.data, tmp_path / "v", seed=0, progress=False)
    ratios = []
    for path, estimate in ((teacher, teacher_checkpoint_bytes(cfg.teacher)),
                           (student, student_checkpoint_bytes(cfg.student, cfg.teacher)),
                           (vjepa2, vjepa2_checkpoint_bytes(cfg.vjepa2))):
        ratios.append(estimate / Path(path).stat().st_size)
    assert ratios == pytest.approx([1, 1, 1], rel=0.05)
