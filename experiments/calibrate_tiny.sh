#!/usr/bin/env bash
# Calibration of the tiny study's data and probe (docs/study_tiny.md, "Calibration"): a V-Pixel teacher
# trained STEPS steps, then the teacher and a random-init encoder of the same size probed by the attentive
# probe and by the ridge readout (probe.kind=ridge; features are cached, so the second probe takes seconds).
# Usage: experiments/calibrate_tiny.sh OUT_DIR STEPS [dotted.key=value ...]
#   experiments/calibrate_tiny.sh runs/calibrate-default 1000 data.frames=8 data.resolution=32 data.workers=0
set -euo pipefail
out=$1; steps=$2; shift 2
mkdir -p "$out"
start=$SECONDS
salt-budget train teacher experiments/tiny.yaml "$@" teacher.optim.steps="$steps" teacher.optim.warmup_steps=50 \
  teacher.run.checkpoint_every="$steps" --run-dir "$out/teacher" > "$out/teacher.log" 2>&1
echo "teacher: $steps steps in $((SECONDS - start)) s; last log: $(grep -v '^final' "$out/teacher.log" | tail -n 1)"
checkpoint="$out/teacher/checkpoints/step_$(printf %08d "$steps").pt"
for kind in attentive ridge; do
  salt-budget probe "$checkpoint" experiments/tiny.yaml "$@" probe.kind=$kind --encoder teacher \
    --out "$out/teacher-$kind.json" 2>/dev/null | sed "s/^/teacher ($kind) /"
  salt-budget probe random experiments/tiny.yaml "$@" probe.kind=$kind --out "$out/random" 2>/dev/null \
    | sed "s/^/random init ($kind) /"
done
echo "done in $((SECONDS - start)) s"
