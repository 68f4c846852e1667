#!/usr/bin/env bash
# The GPU check: on one H100 or H200, in at most 8 minutes (--budget), measure
#   (a) the step MFU of the teacher, the student, V-JEPA 2 and the probe at ViT-L (vit_large), 16 frames x 224 px,
#       bf16, eager and compiled (goals: student >= 45%, teacher >= 35% of the card's dense bf16 peak);
#   (b) the data loader's clips/s with torchcodec decoding on the CPU and with NVDEC (data.decode_device=cuda);
#   (c) a two-budget micro sweep end to end on the GPU (and its report);
# and write benchmarks/gpu_<card>_<date>.md: each measurement against its goal, the command, the versions, and
# pass/fail per goal and per step. Every step runs under `timeout` and the check goes on after a failure.
#
# Usage: experiments/gpu_check.sh [--dry-run] [--out DIR] [--only STEP,...] [--budget SECONDS] [--work DIR]
#   --dry-run        every step at nano size (tiny clips, a few steps) on the CPU, with torch.compile through the
#                    aot_eager backend: checks the script and the report in a minute or two (CI runs it)
#   --out DIR        where the report goes (default: $GPU_CHECK_OUT, else benchmarks/); the dry run's is
#                    gpu_dry-run_<date>.md
#   --only STEPS     run only these steps (comma-separated), e.g. --only env,bench_teacher_compiled
#   --budget S       seconds for all steps together (default 480 on the GPU, 840 dry); a step never gets more
#                    than what is left, and one that would start with under 10 s left is not run
#   --work DIR       logs, records, clips and the sweep go here (default: $GPU_CHECK_WORK, else a new temp folder)
# Steps, in the order they run (cheap ones first, so that slow compiles cannot starve them):
#   env data_prepare bench_teacher_eager bench_student_eager bench_vjepa2_eager bench_probe_eager data_cpu
#   data_nvdec sweep sweep_report bench_student_compiled bench_teacher_compiled bench_vjepa2_compiled
# Each step's time limit (seconds): GPU_CHECK_TIMEOUT_<KIND> for KIND in ENV PREPARE EAGER COMPILED PROBE DATA
#   SWEEP REPORT (GPU defaults 60 90 75 150 90 75 150 45; dry run 240, the sweep 300), or GPU_CHECK_STEP_TIMEOUT
#   for all of them.
# Sizes: GPU_CHECK_MODEL (vit_large), GPU_CHECK_BATCH (16), GPU_CHECK_DATA_WORKERS (12), GPU_CHECK_WARMUP (2),
#   GPU_CHECK_COMPILE_WARMUP (4), GPU_CHECK_WINDOWS (3), GPU_CHECK_WINDOW (2); GPU_CHECK_CACHE: the clip cache
#   (reuse it across runs); GPU_CHECK_COMPILE_DYNAMIC=1 compiles with dynamic=True (one compile, not a static
#   one and its recompiles); PYTHON: the interpreter (default python3).
# Exit status: 0 every step ran (and, on the GPU, every goal was met); 1 a step failed, timed out or was not run;
#   2 usage; 3 every step ran but a goal was missed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "gpu-check: $*" >&2; exit 2; }

dry=0
out=${GPU_CHECK_OUT:-}
only=${GPU_CHECK_ONLY:-}
budget=${GPU_CHECK_BUDGET:-}
work=${GPU_CHECK_WORK:-}
invocation="experiments/gpu_check.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1 ;;
    --out) [ $# -ge 2 ] || die "--out needs a folder"; out=$2; shift ;;
    --out=*) out=${1#*=} ;;
    --only) [ $# -ge 2 ] || die "--only needs step names"; only=$2; shift ;;
    --only=*) only=${1#*=} ;;
    --budget) [ $# -ge 2 ] || die "--budget needs seconds"; budget=$2; shift ;;
    --budget=*) budget=${1#*=} ;;
    --work) [ $# -ge 2 ] || die "--work needs a folder"; work=$2; shift ;;
    --work=*) work=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

# What the user set, before the dry run sets its own: the report's command line shows it.
settings=$(env | grep -E '^GPU_CHECK_' | grep -v -E '^GPU_CHECK_(OUT|WORK)=' | sort | tr '\n' ' ' || true)
ALL_STEPS="env data_prepare bench_teacher_eager bench_student_eager bench_vjepa2_eager bench_probe_eager data_cpu
  data_nvdec sweep sweep_report bench_student_compiled bench_teacher_compiled bench_vjepa2_compiled"
for step in ${only//,/ }; do
  [[ " $(echo $ALL_STEPS) " == *" $step "* ]] || die "--only: no step '$step'; the steps: $(echo $ALL_STEPS)"
done
py=${PYTHON:-python3}
command -v "$py" >/dev/null || die "no $py on PATH (set PYTHON to the interpreter that has torch)"
command -v timeout >/dev/null || die "the timeout command (GNU coreutils) is missing"

# -- sizes: the GPU check, or the same commands at nano size on the CPU --------------------------------------
if [ "$dry" = 1 ]; then
  mode=dry-run device=cpu default_budget=840 default_timeout=240
  model=${GPU_CHECK_MODEL:-nano} batch=${GPU_CHECK_BATCH:-4} workers=${GPU_CHECK_DATA_WORKERS:-0}
  warmup=${GPU_CHECK_WARMUP:-1} compile_warmup=${GPU_CHECK_COMPILE_WARMUP:-1}
  windows=${GPU_CHECK_WINDOWS:-1} window=${GPU_CHECK_WINDOW:-1}
  frames=4 frame_step=2 resolution=32 clip_size=32 clip_frames=8 train=24 val=12
  head="{width: 32, depth: 1, heads: 1}"
  probe_extract=4 probe_batch=8 data_batch=4 data_batches=2 data_workers="0" sweep_preset=nano
  export CUDA_VISIBLE_DEVICES=""  # the CPU, even where a GPU is present
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread a process: a busy CI machine slows spinning threads most
  export GPU_CHECK_COMPILE_BACKEND=${GPU_CHECK_COMPILE_BACKEND-aot_eager}
else
  mode=gpu device=cuda default_budget=480 default_timeout=""
  model=${GPU_CHECK_MODEL:-vit_large} batch=${GPU_CHECK_BATCH:-16} workers=${GPU_CHECK_DATA_WORKERS:-12}
  warmup=${GPU_CHECK_WARMUP:-2} compile_warmup=${GPU_CHECK_COMPILE_WARMUP:-4}
  windows=${GPU_CHECK_WINDOWS:-3} window=${GPU_CHECK_WINDOW:-2}
  # The paper's clip (16 frames at step 4, 224 px) cut from synthetic H.264 clips of 64 frames at 224 px;
  # its 12 x 384 predictor and pixel decoder; the probe of depth 4 without position code.
  frames=16 frame_step=4 resolution=224 clip_size=224 clip_frames=64 train=160 val=32
  head="{width: 384, depth: 12, heads: 16}"
  probe_extract=32 probe_batch=64 data_batch=16 data_batches=8 data_workers="0 $workers" sweep_preset=micro
fi
budget=${budget:-$default_budget}
[[ $budget =~ ^[0-9]+$ ]] || die "--budget must be whole seconds (got '$budget')"
timeout_for() {  # timeout_for KIND GPU_DEFAULT
  local var="GPU_CHECK_TIMEOUT_$1"
  echo "${!var:-${GPU_CHECK_STEP_TIMEOUT:-${default_timeout:-$2}}}"
}
t_env=$(timeout_for ENV 60) t_prepare=$(timeout_for PREPARE 90) t_eager=$(timeout_for EAGER 75)
t_compiled=$(timeout_for COMPILED 150) t_probe=$(timeout_for PROBE 90) t_data=$(timeout_for DATA 75)
t_sweep=$(timeout_for SWEEP 150) t_report=$(timeout_for REPORT 45)
[ "$dry" = 1 ] && [ -z "${GPU_CHECK_TIMEOUT_SWEEP:-}${GPU_CHECK_STEP_TIMEOUT:-}" ] && t_sweep=300
for t in "$t_env" "$t_prepare" "$t_eager" "$t_compiled" "$t_probe" "$t_data" "$t_sweep" "$t_report"; do
  [[ $t =~ ^[0-9]+$ ]] && [ "$t" -gt 0 ] || die "a step time limit must be whole seconds > 0 (got '$t')"
done

out=${out:-$root/benchmarks}
if [ -z "$work" ]; then work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX"); fi
mkdir -p "$work/logs" "$work/records" "$out"
work=$(cd "$work" && pwd); out=$(cd "$out" && pwd)
: > "$work/steps.tsv"
export SALT_BUDGET_CACHE=${GPU_CHECK_CACHE:-$work/cache}
export PYTHONUNBUFFERED=1
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"

# -- the commands: the same in both modes, only sizes and the device differ -----------------------------------
sb=("$py" "$here/gpu_check_cli.py")  # = salt-budget, from this checkout
data=(data.synthetic.train=$train data.synthetic.val=$val data.synthetic.frames=$clip_frames
      data.synthetic.size=$clip_size data.frames=$frames data.frame_step=$frame_step data.resolution=$resolution
      data.workers=$workers data.decode_threads=1)
model_cfg=("teacher.decoder=$head" "student.predictor=$head" "vjepa2.predictor=$head"
           probe.device=$device probe.depth=4 probe.position=none probe.extract_batch_size=$probe_extract
           probe.batch_size=$probe_batch)
for stage in teacher student vjepa2; do model_cfg+=($stage.run.device=$device $stage.run.precision=bf16); done
if [ "$dry" = 1 ]; then  # masks that fit a (2, 4, 4) token grid
  blocks="[{num_blocks: 2, spatial_scale: [0.15, 0.15]}, {num_blocks: 1, spatial_scale: [0.5, 0.5]}]"
  for stage in teacher student vjepa2; do model_cfg+=("$stage.masks.blocks=$blocks"); done
fi
sweep_name=gpu-check sweep_budgets="8 12" sweep_teacher_steps=4
sweep_blocks="[{num_blocks: 2, spatial_scale: [0.15, 0.15]}, {num_blocks: 1, spatial_scale: [0.5, 0.5]}]"
sweep_cfg=(runs_dir=$work/runs data.synthetic.train=24 data.synthetic.val=12 data.synthetic.frames=8
           data.synthetic.size=32 data.frames=4 data.frame_step=2 data.resolution=32 data.workers=0
           probe.epochs=2 probe.batch_size=8 probe.device=$device)
for stage in teacher student vjepa2; do
  sweep_cfg+=("$stage.masks.blocks=$sweep_blocks" "$stage.run.device=$device")
  head_key=$stage.predictor; [ $stage = teacher ] && head_key=teacher.decoder
  sweep_cfg+=("$head_key={width: 32, depth: 1, heads: 1}")
done
sweep_cfg+=(teacher.optim.batch_size=4 student.optim.batch_size=4 teacher.optim.warmup_steps=2
            student.optim.warmup_steps=2)

# -- the run's record, for the report -------------------------------------------------------------------------
quote() {  # the arguments as a shell line, quoted only where needed
  local arg line=""
  for arg in "$@"; do
    arg=${arg//$root\//}
    if [[ $arg =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then line+="$arg "; else line+="'${arg//\'/\'\\\'\'}' "; fi
  done
  echo "${line% }"
}
{
  printf 'mode\t%s\n' "$mode"
  printf 'command\t%s\n' "${settings}${invocation}"
  printf 'date\t%s\n' "$(date -u +%F)"
  printf 'out\t%s\n' "$out"
  printf 'only\t%s\n' "$only"
  printf 'budget\t%s\n' "$budget"
  printf 'model\t%s\nbatch\t%s\nframes\t%s\nframe_step\t%s\nresolution\t%s\n' "$model" "$batch" "$frames" \
    "$frame_step" "$resolution"
  printf 'clip_size\t%s\nwarmup\t%s\ncompile_warmup\t%s\nwindows\t%s\nwindow\t%s\n' "$clip_size" "$warmup" \
    "$compile_warmup" "$windows" "$window"
  printf 'probe_depth\t4\ndata_batch\t%s\ndata_batches\t%s\nreader\ttorchcodec\n' "$data_batch" "$data_batches"
  printf 'sweep_name\t%s\nsweep_budgets\t%s\nsweep_teacher_steps\t%s\nsweep_preset\t%s\n' "$sweep_name" \
    "$sweep_budgets" "$sweep_teacher_steps" "$sweep_preset"
  printf 'compile_backend\t%s\n' "${GPU_CHECK_COMPILE_BACKEND:-inductor}${GPU_CHECK_COMPILE_DYNAMIC:+, dynamic=True}"
} > "$work/meta.tsv"

start=$SECONDS
reserve=10   # seconds kept for the report
abort=""
say() { echo "[gpu-check +$((SECONDS - start))s] $*"; }
record() {  # record NAME RC SECONDS LIMIT NOTE COMMAND...
  local name=$1 rc=$2 seconds=$3 limit=$4 note=$5; shift 5
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$seconds" "$limit" "$note" "$(quote "$@")" >> "$work/steps.tsv"
}
last_error() {  # the last exception or error line of a log, else its last line
  { grep -E '^[A-Za-z_.]*(Error|Exception)\b|error:|Killed' "$1" || grep -v '^\s*$' "$1" || true; } \
    | tail -n 1 | cut -c1-200
}
run_step() {  # run_step NAME LIMIT COMMAND...: under timeout, output to logs/NAME.log; never stops the script
  local name=$1 limit=$2; shift 2
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then record "$name" skip 0 "" "not in --only" "$@"; return 0; fi
  if [ -n "$abort" ]; then record "$name" skip 0 "" "not run: $abort" "$@"; say "$name: not run ($abort)"; return 0; fi
  local left=$((budget - (SECONDS - start) - reserve))
  if [ "$left" -lt 10 ]; then
    record "$name" skip 0 "$limit" "not run: ${left} s of the ${budget} s budget left" "$@"
    say "$name: NOT RUN (budget spent)"; return 0
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  say "$name (limit ${limit} s)"
  local t0=$SECONDS rc=0
  timeout -k 5 "$limit" "$@" > "$work/logs/$name.log" 2>&1 < /dev/null || rc=$?
  record "$name" "$rc" "$((SECONDS - t0))" "$limit" "" "$@"
  case $rc in
    0) say "$name: exit 0 in $((SECONDS - t0)) s" ;;
    124|137) say "$name: TIMED OUT after $limit s (log: $work/logs/$name.log)" ;;
    *) say "$name: FAILED, exit $rc: $(last_error "$work/logs/$name.log")" ;;
  esac
}
bench() {  # bench STAGE MODE
  local stage=$1 mode=$2 compile=false w=$warmup
  [ "$mode" = compiled ] && compile=true w=$compile_warmup
  local limit=$t_eager; [ "$mode" = compiled ] && limit=$t_compiled
  run_step "bench_${stage}_$mode" "$limit" "${sb[@]}" bench "${data[@]}" "${model_cfg[@]}" \
    "$stage.run.compile=$compile" --stage "$stage" --model "$model" --batch "$batch" \
    --warmup "$w" --windows "$windows" --window "$window" --record "$work/records/bench_${stage}_$mode.jsonl"
}
data_bench() {  # data_bench STEP DECODE_DEVICE WORKERS...
  local name=$1 decode=$2; shift 2
  run_step "$name" "$t_data" "${sb[@]}" data bench "${data[@]}" data.reader=torchcodec data.decode_device="$decode" \
    --workers "$@" --batch-size "$data_batch" --batches "$data_batches" --json "$work/records/$name.json"
}

say "mode $mode, budget $budget s; work folder $work"
run_step env "$t_env" "$py" "$here/gpu_check_report.py" env "$work"
if [ "$mode" = gpu ] && [ -n "$(awk -F'\t' '$1 == "env" && $2 != "0" && $2 != "skip"' "$work/steps.tsv")" ]; then
  abort="the env step failed: no usable GPU"
fi
run_step data_prepare "$t_prepare" "${sb[@]}" data prepare "${data[@]}" "${model_cfg[@]}"
for stage in teacher student vjepa2; do bench $stage eager; done
run_step bench_probe_eager "$t_probe" "${sb[@]}" bench "${data[@]}" "${model_cfg[@]}" --stage probe \
  --model "$model" --warmup "$window" --windows 1 --window "$window" --record "$work/records/bench_probe_eager.jsonl"
data_bench data_cpu cpu $data_workers
data_bench data_nvdec cuda 0  # CUDA cannot start in forked DataLoader workers: NVDEC decodes in the main process
gpus=0; [ "$mode" = gpu ] && gpus=1
# shellcheck disable=SC2086
run_step sweep "$t_sweep" "${sb[@]}" sweep --total-steps $sweep_budgets --teacher-steps $sweep_teacher_steps \
  --teacher-sizes $sweep_preset --student-size $sweep_preset --probe-points 1 --gpus-per-trial $gpus \
  --name $sweep_name --yes "${sweep_cfg[@]}"
run_step sweep_report "$t_report" "${sb[@]}" report "$work/runs/$sweep_name" --format md --out "$work/sweep_report"
for stage in student teacher vjepa2; do bench $stage compiled; done

printf 'elapsed\t%s\n' "$((SECONDS - start))" >> "$work/meta.tsv"
say "all steps done; writing the report"
rc=0
"$py" "$here/gpu_check_report.py" report "$work" || rc=$?
echo "gpu-check: logs, records and clips in $work"
case $rc in
  0|1|3) exit "$rc" ;;
  *) echo "gpu-check: FAILED writing the report (exit $rc)" >&2; exit 1 ;;
esac
