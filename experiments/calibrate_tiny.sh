#!/usr/bin/env bash
# One row pair of docs/calibration.md: a V-Pixel teacher trained TEACHER_STEPS, a SALT student trained
# STUDENT_STEPS on it, and both read beside the random-init encoder of the same size on three ridge readouts
# (the whole token grid, each time step's token means, means and stds), on the calibration data: 8 frames of
# 32 px from 1,500 / 500 embedded clips. Extra dotted overrides apply to every command (use teacher.* or
# student.* keys to change one stage). Prints one markdown table; every probe result is kept in OUT/.
# Usage: experiments/calibrate_tiny.sh OUT TEACHER_STEPS STUDENT_STEPS [dotted.key=value ...]
#   experiments/calibrate_tiny.sh runs/cal/paper 1000 1000
#   experiments/calibrate_tiny.sh runs/cal/clip1 1000 1000 student.optim.grad_clip=1.0
# About 4 min for 1,000 + 1,000 steps on 2 cores (two calibrations can run side by side, one core each).
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,11p' "$0"; exit 2; fi
out=$1; teacher_steps=$2; student_steps=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/calibration_data.sh"
readouts="probe.kind=ridge probe.pooling=flat probe.also_ridge=[mean,mean_std]"
mkdir -p "$out"
start=$SECONDS
# shellcheck disable=SC2086
salt-budget train teacher "$here/tiny.yaml" $data "$@" teacher.optim.steps="$teacher_steps" \
  teacher.optim.warmup_steps=50 teacher.run.checkpoint_every="$teacher_steps" --run-dir "$out/teacher" > "$out/teacher.log" 2>&1
teacher="$out/teacher/checkpoints/step_$(printf %08d "$teacher_steps").pt"
# shellcheck disable=SC2086
salt-budget train student "$here/tiny.yaml" $data "$@" student.optim.steps="$student_steps" \
  student.optim.warmup_steps=50 student.run.checkpoint_every="$student_steps" --teacher "$teacher" \
  --run-dir "$out/student" > "$out/student.log" 2>&1
student="$out/student/checkpoints/step_$(printf %08d "$student_steps").pt"
# shellcheck disable=SC2086
salt-budget probe random "$here/tiny.yaml" $data "$@" $readouts --out "$out/random" > /dev/null 2>&1
# shellcheck disable=SC2086
salt-budget probe "$teacher" "$here/tiny.yaml" $data "$@" $readouts --encoder teacher --out "$out/teacher.json" > /dev/null 2>&1
# shellcheck disable=SC2086
salt-budget probe "$student" "$here/tiny.yaml" $data "$@" $readouts --encoder student --out "$out/student.json" > /dev/null 2>&1
python "$here/readout_table.py" "random init=$(ls "$out"/random/probes/random_init-*-seed0.json)" \
  "teacher $teacher_steps=$out/teacher.json" "student $student_steps=$out/student.json"
echo "done in $((SECONDS - start)) s"
