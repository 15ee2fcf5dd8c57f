#!/usr/bin/env bash
# Adapt a trained tfspk model to your own speakers (fine-tuning, issue 12).
#
#   recipes/adapt/run.sh --init_from demo_out/model --train_manifest my_train.tsv \
#       [--test_manifest my_test.tsv --trials my_trials.txt] [--freeze_until conv2]
#
# --init_from: a tfspk training directory, checkpoint prefix or SavedModel export.
# Manifests: `path<TAB>speaker[<TAB>utt_id]`, any format tfspk.audio reads.
# Trials (optional): VoxCeleb (`1 utt_a utt_b`) or Kaldi format over the test manifest's
# utt_ids; stage 4 then reports cosine EER before and after fine-tuning.
#
# Stages: 1 shards, 2 fine-tune, 3 export, 4 score. `--stage N --stop_stage M` runs a
# range; every stage resumes or skips what is already done. See README.md.
set -euo pipefail

stage=1
stop_stage=4
init_from=""
train_manifest=""
test_manifest=""
trials=""
work_dir=exp/adapt
flagfile=""            # default: INIT_FROM/flags.txt (a run dir), else configs/demo.flags
max_steps=300
freeze_until=""        # e.g. conv2: keep conv1..conv2 (and their batch norm) as loaded
learning_rate=0.0005
train_flags=""         # more tfspk.train flags, appended last (word-split)
num_shards=2
python="${PYTHON:-python}"

while [[ $# -gt 0 ]]; do
  arg="${1#--}"
  if [[ "$arg" == *=* ]]; then name="${arg%%=*}"; value="${arg#*=}"; shift
  else name="$arg"; value="${2:?--$arg needs a value}"; shift 2; fi
  if ! declare -p "$name" >/dev/null 2>&1 || [[ "$name" == arg || "$name" == name ]]; then
    echo "error: unknown option --$name" >&2; exit 2
  fi
  printf -v "$name" '%s' "$value"
done
[[ -n "$init_from" ]] || { echo "error: --init_from is required" >&2; exit 2; }
[[ -n "$train_manifest" ]] || { echo "error: --train_manifest is required" >&2; exit 2; }
if [[ -n "$trials" && -z "$test_manifest" ]]; then
  echo "error: --trials needs --test_manifest" >&2; exit 2
fi

data="$work_dir/data"
model="$work_dir/model"
exports="$work_dir/export"
if [[ -z "$flagfile" ]]; then
  if [[ -f "$init_from/flags.txt" ]]; then
    flagfile="$init_from/flags.txt"   # the source's resolved config: same architecture
  else
    flagfile="$("$python" -c 'import tfspk.configs as c; print(c.path("demo.flags"))')"
  fi
fi

run() { echo "+ $*" >&2; "$@"; }

if (( stage <= 1 && 1 <= stop_stage )); then
  for split in train test; do
    manifest="$train_manifest"; [[ $split == test ]] && manifest="$test_manifest"
    [[ -n "$manifest" ]] || continue
    [[ -f "$data/$split.metadata.json" ]] && continue
    run "$python" -m tfrecords_tools.build --input_format=manifest --input="$manifest" \
      --output_dir="$data" --split="$split" --num_shards="$num_shards"
  done
fi

if (( stage <= 2 && 2 <= stop_stage )); then
  # Flags after the flagfile win: the new data, a new model dir, a short schedule. The
  # source run's own data and validation settings are cleared.
  extra=()
  [[ -n "$freeze_until" ]] && extra+=("--freeze_until=$freeze_until")
  if [[ -n "$trials" ]]; then
    extra+=("--validation_data=$data/test-*.tfrecord" "--validation_trials=$trials")
  else
    extra+=("--validation_data=" "--validation_trials=")
  fi
  # shellcheck disable=SC2086
  run "$python" -m tfspk.train --flagfile="$flagfile" --model_dir="$model" \
    --train_data="$data/train-*.tfrecord" --speakers_tsv= --num_speakers=0 \
    --init_from="$init_from" --max_steps="$max_steps" --learning_rate="$learning_rate" \
    --lr_schedule=constant --warmup_steps=0 --augmentation_data= --augment_probability=0 \
    --augment_reverb=0 --augment_noise=0 --augment_music=0 --augment_babble=0 \
    --validate_every="$max_steps" --checkpoint_every="$max_steps" "${extra[@]}" $train_flags
fi

if (( stage <= 3 && 3 <= stop_stage )); then
  [[ -f "$exports/adapted/1/saved_model.pb" ]] || \
    run "$python" -m tfspk.export --model_dir="$model" --export_dir="$exports/adapted" --version=1
fi

if (( stage <= 4 && 4 <= stop_stage )) && [[ -n "$trials" ]]; then
  before="$init_from"
  if [[ ! -f "$init_from/saved_model.pb" ]]; then
    [[ -f "$exports/before/1/saved_model.pb" ]] || \
      run "$python" -m tfspk.export --model_dir="$init_from" --export_dir="$exports/before" --version=1
    before="$exports/before/1"
  fi
  for system in before adapted; do
    saved_model="$before"; [[ $system == adapted ]] && saved_model="$exports/adapted/1"
    [[ -f "$work_dir/$system.npz" ]] || run "$python" -m eval.extract --saved_model="$saved_model" \
      --input_format=manifest --input="$test_manifest" --output="$work_dir/$system.npz"
    run "$python" -m eval.score --trials="$trials" --embeddings="$work_dir/$system.npz" \
      --backend=cosine --output_dir="$work_dir/score_$system"
  done
  "$python" - "$work_dir" <<'PY'
import json, sys
for system in ("before", "adapted"):
    metrics = json.load(open(f"{sys.argv[1]}/score_{system}/metrics.json"))
    print(system, json.dumps(metrics))
PY
fi
