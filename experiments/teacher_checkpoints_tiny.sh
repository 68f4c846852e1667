#!/usr/bin/env bash
# The scene table of docs/calibration.md: a V-Pixel teacher with study_tiny's teacher settings (decoder sin-cos
# position code, 50-step warm-up), 480 cosine steps with checkpoints at 160, 320 and 480, read beside the
# random-init encoder on three ridge readouts (flat grid, means, means + stds). Extra dotted overrides (the
# scene) apply to every command. Prints one markdown table; everything is kept in OUT/.
# Usage: experiments/teacher_checkpoints_tiny.sh OUT [dotted.key=value ...]
#   experiments/teacher_checkpoints_tiny.sh runs/pre/default
#   experiments/teacher_checkpoints_tiny.sh runs/pre/easy data.synthetic.scene.distractor=false \
#     data.synthetic.scene.noise_std=2.0 data.synthetic.scene.camera_drift=false data.synthetic.scene.object_radius=[0.3,0.45]
# About 4 min on one core (two side by side on 2 cores).
set -euo pipefail
if [ $# -lt 1 ]; then sed -n '2,10p' "$0"; exit 2; fi
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
. "$here/calibration_data.sh"
readouts="probe.kind=ridge probe.pooling=flat probe.also_ridge=[mean,mean_std]"
mkdir -p "$out"
# shellcheck disable=SC2086
salt-budget train teacher "$here/tiny.yaml" $data "$@" teacher.decoder.position=sincos teacher.optim.steps=480 \
  teacher.optim.warmup_steps=50 teacher.run.checkpoint_steps=[160,320,480] --run-dir "$out/t" > "$out/log.txt" 2>&1
# shellcheck disable=SC2086
salt-budget probe random "$here/tiny.yaml" $data "$@" $readouts --out "$out/random" >> "$out/log.txt" 2>&1
args=("random init=$(ls "$out"/random/probes/random_init-*-seed0.json)")
for step in 160 320 480; do
  # shellcheck disable=SC2086
  salt-budget probe "$out/t/checkpoints/step_$(printf %08d $step).pt" "$here/tiny.yaml" $data "$@" $readouts \
    --encoder teacher --out "$out/t$step.json" >> "$out/log.txt" 2>&1
  args+=("teacher $step=$out/t$step.json")
done
python "$here/readout_table.py" "${args[@]}"
