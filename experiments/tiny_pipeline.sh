#!/usr/bin/env bash
# The tiny SALT pipeline on the embedded data set, end to end on a CPU:
#   V-Pixel teacher -> frozen-teacher SALT student -> attentive probes of the student, the teacher,
#   a randomly initialised encoder of the same size, and single-frame probes (motion needs time).
# Usage: experiments/tiny_pipeline.sh [EXPERIMENT.yaml] [OUT_DIR] [dotted.key=value ...]
set -euo pipefail
experiment=${1:-experiments/tiny.yaml}
out=${2:-runs/tiny-pipeline}
shift $(( $# > 2 ? 2 : $# ))
mkdir -p "$out"
log() { echo "[pipeline $(date +%H:%M:%S)] $*" | tee -a "$out/pipeline.log"; }

start=$SECONDS
teacher=$(salt-budget train teacher "$experiment" "$@" --run-dir "$out/teacher" | sed -n 's/^final checkpoint: //p')
log "teacher done in $((SECONDS - start)) s: $teacher"
mark=$SECONDS
student=$(salt-budget train student "$experiment" "$@" --run-dir "$out/student" --teacher "$teacher" \
  | sed -n 's/^final checkpoint: //p')
log "student done in $((SECONDS - mark)) s: $student"
mark=$SECONDS
for checkpoint in "$student" "$teacher"; do
  salt-budget probe "$checkpoint" "$experiment" "$@" | tee -a "$out/pipeline.log"
done
salt-budget probe random "$experiment" "$@" --out "$out/random" | tee -a "$out/pipeline.log"
log "probes done in $((SECONDS - mark)) s"
mark=$SECONDS
salt-budget probe "$student" "$experiment" "$@" --single-frame | tee -a "$out/pipeline.log"
salt-budget probe random "$experiment" "$@" --single-frame --out "$out/random" | tee -a "$out/pipeline.log"
log "single-frame probes done in $((SECONDS - mark)) s"
log "pipeline done in $((SECONDS - start)) s"
