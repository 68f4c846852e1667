# Sourced by the calibration scripts: the data every row of docs/calibration.md reads, 8 frames of 32 px from
# 1,500 / 500 embedded clips generated at 32 px, decoded once and kept in memory; and the easy scene that
# study_tiny uses (no distractor, pixel noise 2, no camera drift, objects of radius 0.3-0.45).
# shellcheck shell=bash disable=SC2034
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
data="data.frames=8 data.resolution=32 data.synthetic.size=32 data.synthetic.train=1500 data.synthetic.val=500
      data.workers=0 data.decoded_cache_mb=1000"
easy_scene="data.synthetic.scene.distractor=false data.synthetic.scene.noise_std=2.0
      data.synthetic.scene.camera_drift=false data.synthetic.scene.object_radius=[0.3,0.45]"
