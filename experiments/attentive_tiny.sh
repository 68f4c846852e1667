#!/usr/bin/env bash
# The attentive probe against the ridge readouts, on study_tiny's data (the easy scene, 8 frames of 32 px,
# 1,500 / 500 embedded clips): each encoder read by the depth-1 attentive head with the paper's fixed 20 epochs
# and trained by steps until its train accuracy stops rising, beside ridge on the flat grid, the means and
# means + stds. Prints one markdown table per protocol (train accuracy of the head in brackets; "n.c." for a
# head within 5 points of chance on train). Every probe result is kept in OUT/.
# Usage: experiments/attentive_tiny.sh OUT CHECKPOINT:teacher|student [CHECKPOINT:... ...]
#   experiments/attentive_tiny.sh runs/attentive runs/study-tiny/main/teachers/<key>/checkpoints/step_00000960.pt:teacher
# About 3 min per encoder on one core (OMP_NUM_THREADS=1).
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,9p' "$0"; exit 2; fi
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
. "$here/calibration_data.sh"
data="$data $easy_scene"
ridge="probe.also_ridge=[flat,mean,mean_std]"
declare -A protocols=([epochs]="probe.epochs=20" [steps]="probe.steps=4000 probe.check_every=100 probe.patience=5")
mkdir -p "$out"
start=$SECONDS
for protocol in epochs steps; do
  # shellcheck disable=SC2086
  salt-budget probe random "$here/tiny.yaml" $data $ridge ${protocols[$protocol]} --out "$out/random-$protocol" > "$out/random-$protocol.log" 2>&1
  args=("random init=$(ls "$out/random-$protocol"/probes/random_init-*-seed0.json)")
  index=0
  for spec in "$@"; do
    checkpoint=${spec%:*}; encoder=${spec##*:}; index=$((index + 1))
    # shellcheck disable=SC2086
    salt-budget probe "$checkpoint" "$here/tiny.yaml" $data $ridge ${protocols[$protocol]} --encoder "$encoder" \
      --out "$out/$index-$protocol.json" > "$out/$index-$protocol.log" 2>&1
    args+=("$encoder $index ($(basename "$(dirname "$(dirname "$checkpoint")")") $(basename "$checkpoint" .pt))=$out/$index-$protocol.json")
  done
  echo "attentive probe, $protocol:"
  python "$here/readout_table.py" "${args[@]}"
done
echo "done in $((SECONDS - start)) s"
