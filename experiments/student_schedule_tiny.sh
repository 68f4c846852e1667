#!/usr/bin/env bash
# The tiny study's allocation grid (experiments/study_tiny.yaml: budgets 960 / 1,440 / 1,920, teacher shares
# 1/6, 1/3, 1/2, seeds 0 and 1, the same experiment overrides) twice: students on wsd ladders (the default with
# wsd teachers) and on the cosine schedule, one run per allocation. Then the two allocation tables side by side:
#   experiments/student_schedule_tiny.sh            # about 80 minutes on 2 CPU cores
#   python experiments/student_schedule_table.py runs/schedule-tiny/students-wsd runs/schedule-tiny/students-cosine
set -euo pipefail
cd "$(dirname "$0")/.."
OVERRIDES=(
  runs_dir=runs/schedule-tiny
  data.frames=8 data.resolution=32 data.synthetic.size=32 data.synthetic.train=1500 data.synthetic.val=500
  data.workers=0 data.decoded_cache_mb=512
  data.synthetic.scene.distractor=false data.synthetic.scene.noise_std=2.0 data.synthetic.scene.camera_drift=false
  "data.synthetic.scene.object_radius=[0.3,0.45]"
  teacher.decoder.position=sincos teacher.optim.warmup_steps=50
  student.predictor.position=sincos student.optim.grad_clip=1.0 student.optim.warmup_steps=50
  probe.kind=ridge probe.pooling=flat "probe.also_ridge=[mean,mean_std]"
)
for schedule in wsd cosine; do
  salt-budget sweep experiments/tiny.yaml --total-steps 960 1440 1920 --teacher-fractions 1/6 1/3 1/2 --yes \
    --seeds 0 1 --probe-points 2 --student-schedule "$schedule" --name "students-$schedule" "$@" "${OVERRIDES[@]}"
done
python experiments/student_schedule_table.py runs/schedule-tiny/students-wsd runs/schedule-tiny/students-cosine
