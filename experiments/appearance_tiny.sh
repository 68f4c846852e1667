#!/usr/bin/env bash
# "Appearance at the study's scale" (docs/calibration.md): is the embedded set's appearance task learned (trained
# encoder above its random-init floor by more than two seed sd) in the study's setting (experiments/first.yaml),
# and which single factor widens the gap? One one-allocation sweep per setting: budget 960, teacher share 1/3
# (T = 320, S = 640), seeds 0 and 1, the final student probed once; each sweep probes the random-init floor of
# each seed, the teacher and the student on the flat grid (the study's readout) and, beside it, on each time
# step's token mean (probe.also_ridge=[mean]). --cpus-per-trial 1.5 on a 2-CPU Ray: one unit at a time, one
# thread, so the script uses one core; measured 5.5-11 min a setting at patch 8 (the machine shared), 14 min at patch 4.
# Usage: experiments/appearance_tiny.sh [SETTING ...]   (default: all; each writes runs/app-<setting>/)
#   settings: base crop08 clips3000 nobg b1280 patch4; `table` prints the table of runs/first2 (the doc's base
#   row, the README's sweep) and of every finished runs/app-* sweep
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
settings=("$@"); [ ${#settings[@]} -eq 0 ] && settings=(base crop08 clips3000 nobg b1280 patch4 table)

overrides() {
  case $1 in
    base|b1280) ;;                                        # experiments/first.yaml as it is
    crop08) echo "data.crop_scale=[0.8,1.0]" ;;           # pre-training crop keeps >= 80% of the frame (0.3)
    clips3000) echo "data.synthetic.train=3000" ;;        # twice the clips, pre-training and probe train split
    nobg) echo "data.synthetic.scene.background=false" ;; # flat background colour, no drifting texture
    patch4) echo "teacher.encoder.patch_size=4 student.encoder.patch_size=4" ;;  # 4 x 8 x 8 tokens
    *) echo "unknown setting $1" >&2; exit 2 ;;
  esac
}

table() {  # the floor, the teacher and the student of a sweep, flat and mean readouts, mean +- sd over seeds
  python - "$@" <<'PY'
import json, statistics as st, sys
from pathlib import Path
import torch, yaml
from trainers.probe.ridge import ridge_readout

def final(unit):
    probes = sorted((unit / "probes").glob("*.json"))
    return json.loads(probes[-1].read_text()) if probes else None

def read(unit, seed):
    probe = final(unit)
    out = {f"flat_{t}": probe["tasks"][t]["accuracy"] for t in ("appearance", "motion")}
    mean = probe.get("readouts", {}).get("ridge_mean")
    if not mean:  # a sweep run without probe.also_ridge: the same readout from its cached features
        newest = lambda s: max((unit / "features").glob(f"{s}-*.pt"), key=lambda p: p.stat().st_mtime)
        tr, va = (torch.load(newest(s), weights_only=True) for s in ("train", "val"))
        res = ridge_readout(tr["features"], tr["labels"], va["features"], va["labels"], [10, 10],
                            lambdas=[1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], folds=5, seed=seed,
                            time_steps=4, pooling="mean")
        mean = {"appearance": res[0], "motion": res[1]}
    out.update({f"mean_{t}": mean[t]["accuracy"] for t in ("appearance", "motion")})
    return out

for sweep in map(Path, sys.argv[1:]):
    rows = {}
    for unit in sorted((sweep / "random_init").glob("*_seed*")):
        seed = int(unit.name.split("seed")[1].split("-")[0])
        rows.setdefault("floor", {})[seed] = read(unit, seed)
    for unit in sorted((sweep / "teachers").glob("*")):
        if final(unit):
            seed = int(yaml.safe_load((unit / "config.yaml").read_text())["seed"])
            rows.setdefault(f"teacher {final(unit)['step']}", {})[seed] = read(unit, seed)
    for unit in sorted((sweep / "trials").glob("N*")):
        seed = int(unit.name.split("_seed")[1].split("-")[0])
        name = "student " + unit.name.split("_seed")[0]
        rows.setdefault(name, {})[seed] = read(unit, seed)
    pm = lambda xs: f"{100 * st.mean(xs):.1f} ± {100 * st.stdev(xs):.1f}" if len(xs) > 1 else f"{100 * xs[0]:.1f}"
    print(f"\n{sweep} (appearance / motion, %, mean ± sd over seeds)")
    for readout in ("flat", "mean"):
        floor = rows["floor"]
        for role, by_seed in rows.items():
            a, m = ([v[f"{readout}_{t}"] for v in by_seed.values()] for t in ("appearance", "motion"))
            line = f"  {readout:4s} {role:34s} {pm(a)} / {pm(m)}  seeds {sorted(by_seed)}"
            if role != "floor" and len(a) > 1:
                fa = [floor[s][f"{readout}_appearance"] for s in by_seed]
                gap = st.mean(a) - st.mean(fa)
                bar = 2 * max(st.stdev(a), st.stdev(fa))
                line += f"  appearance gap {100 * gap:+.1f} vs 2 sd {100 * bar:.1f}: {'learned' if gap > bar else 'not resolved'}"
            print(line)
    (sweep / "appearance_table.json").write_text(json.dumps({r: {str(s): v for s, v in d.items()} for r, d in rows.items()}, indent=1))
PY
}

for setting in "${settings[@]}"; do
  if [ "$setting" = table ]; then
    # runs/first2: the README's two-seed sweep, whose T = 320 allocation is the base row of the doc
    # shellcheck disable=SC2046
    table $(ls -d runs/first2/ runs/app-*/ 2>/dev/null | sed 's:/$::'); continue
  fi
  budget=(--total-steps 960 --teacher-fractions 1/3)
  [ "$setting" = b1280 ] && budget=(--total-steps 1280 --teacher-steps 320)  # the same teacher, 960 student steps
  # shellcheck disable=SC2046
  nice -n 5 salt-budget sweep "$here/first.yaml" "${budget[@]}" --seeds 0 1 --yes \
    --probe-points 1 --cpus-per-trial 1.5 --name "app-$setting" "probe.also_ridge=[mean]" $(overrides "$setting") \
    > "runs/app-$setting.log" 2>&1 || { echo "app-$setting failed: runs/app-$setting.log" >&2; exit 1; }
  grep -E "^\[sweep\] (teachers|.*done|wall)" "runs/app-$setting.log" | tail -4 || true
done
