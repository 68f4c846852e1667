#!/usr/bin/env bash
# One student row of docs/calibration.md's study-setting table: a SALT student trained with study_tiny's data
# and student recipe (easy scene, predictor position code, gradient clip 1.0, 50-step warm-up) against a given
# frozen teacher checkpoint, read on the three ridge readouts. Extra dotted overrides (the factor) apply to
# the student. Prints one markdown table row; everything is kept in OUT/.
# Usage: experiments/student_factor_tiny.sh OUT TEACHER_CHECKPOINT STUDENT_STEPS [dotted.key=value ...]
#   experiments/student_factor_tiny.sh runs/factor/depth4 runs/study-tiny/main/teachers/<key>/checkpoints/step_00000480.pt 960 \
#     'student.predictor={width: 64, depth: 4, heads: 2, position: sincos}'
# About 5 min for 960 steps on one core.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,9p' "$0"; exit 2; fi
out=$1; teacher=$2; steps=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/calibration_data.sh"
data="$data $easy_scene"
readouts="probe.kind=ridge probe.pooling=flat probe.also_ridge=[mean,mean_std]"
mkdir -p "$out"
start=$SECONDS
# shellcheck disable=SC2086
salt-budget train student "$here/tiny.yaml" $data student.predictor.position=sincos student.optim.grad_clip=1.0 \
  student.optim.warmup_steps=50 student.optim.steps="$steps" student.run.checkpoint_every="$steps" "$@" \
  --teacher "$teacher" --run-dir "$out/student" > "$out/log.txt" 2>&1
# shellcheck disable=SC2086
salt-budget probe "$out/student/checkpoints/step_$(printf %08d "$steps").pt" "$here/tiny.yaml" $data $readouts \
  --encoder student --out "$out/student.json" >> "$out/log.txt" 2>&1
python "$here/readout_table.py" "$(basename "$out")=$out/student.json" | tail -1
echo "done in $((SECONDS - start)) s"
