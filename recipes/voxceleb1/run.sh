#!/usr/bin/env bash
# VoxCeleb1 recipe for Shon, Tang & Glass (SLT 2018): train the paper CNN on the
# VoxCeleb1 dev speakers, export its fc1 and fc2 embeddings, score the official and
# cleaned verification lists with cosine and LDA+PLDA, and report a Table 4-style table.
#
#   recipes/voxceleb1/run.sh --vox1 /data/VoxCeleb1 --musan /data/musan \
#       --rirs /data/RIRS_NOISES                        # real corpus, all stages
#   recipes/voxceleb1/run.sh --synthetic true --max_steps 300   # espeak-ng corpus, CPU
#   recipes/voxceleb1/run.sh ... --stage 4 --stop_stage 6       # a range of stages
#
# Stages: 0 prepare, 1 tfrecords, 2 train, 3 export, 4 extract, 5 backend, 6 score,
# 7 report. Options are `--name value` or `--name=value` for every variable below;
# see recipes/voxceleb1/README.md.
set -euo pipefail

# ---- options (each one settable as --name) ----------------------------------------
stage=0
stop_stage=7
synthetic=false          # true: generate a small espeak-ng corpus instead of VoxCeleb1
vox1="${VOX1:-}"         # real VoxCeleb1 root (see README for the layouts accepted)
musan="${MUSAN:-}"       # real MUSAN root (noise/ music/ speech/)
rirs="${RIRS_NOISES:-}"  # real RIRS_NOISES root (simulated_rirs/ ...)
work_dir=exp/voxceleb1   # everything this recipe writes
train_config=""          # default: configs/paper_voxceleb1.flags (synthetic: configs/demo.flags)
max_steps=""             # overrides the flagfile's --max_steps
train_flags=""           # more tfspk.train flags, appended last (word-split)
build_flags=""           # more tfrecords_tools.build flags, e.g. --overwrite (word-split)
num_train_shards=""      # default 64 (synthetic 2)
num_test_shards=""       # default 8 (synthetic 2)
nj="$(nproc)"            # shard-writing processes
backend_data=""          # shards of the backend's training embeddings (default: see below)
lda_dim=200              # LDA dimension before PLDA (capped by #speakers - 1)
expect_counts=voxceleb1  # real corpus: known speaker/utterance counts checked in stage 0 ("" skips)
python="${PYTHON:-python}"
# synthetic corpus sizes
synth_speakers=40
synth_utts=10
synth_test_speakers=8
synth_babble_speakers=4
synth_noise=6
synth_music=3
synth_rooms=2            # simulated rooms per room size
synth_rirs_per_room=2
synth_workers="$(nproc)"
seed=0

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-1}"
}

options=(stage stop_stage synthetic vox1 musan rirs work_dir train_config max_steps
         train_flags build_flags num_train_shards num_test_shards nj backend_data lda_dim
         expect_counts
         python synth_speakers synth_utts synth_test_speakers synth_babble_speakers
         synth_noise synth_music synth_rooms synth_rirs_per_room synth_workers seed)
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage 0 ;;
    --*=*) name="${1%%=*}"; value="${1#*=}"; shift ;;
    --*) [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
         name="$1"; value="$2"; shift 2 ;;
    *) echo "$0: unexpected argument '$1' (options are --name value)" >&2; usage ;;
  esac
  name="${name#--}"; name="${name//-/_}"
  [[ " ${options[*]} " == *" $name "* ]] || { echo "$0: unknown option --$name" >&2; exit 1; }
  printf -v "$name" '%s' "$value"
done
case "$synthetic" in true|false) ;; *) echo "$0: --synthetic must be true or false" >&2; exit 1 ;; esac
for number in stage stop_stage lda_dim nj; do
  [[ "${!number}" =~ ^[0-9]+$ ]] || { echo "$0: --$number must be a number" >&2; exit 1; }
done

export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
absolute() { [ -z "$1" ] && return 0; case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
work_dir="$(absolute "$work_dir")"
vox1="$(absolute "$vox1")"; musan="$(absolute "$musan")"; rirs="$(absolute "$rirs")"
[ -z "$backend_data" ] || backend_data="$(absolute "$backend_data")"
[ -z "$train_config" ] || train_config="$(absolute "$train_config")"
cd "$repo"  # python -m finds tfspk, eval and tfrecords_tools; configs/ resolves

if [ "$synthetic" = true ]; then
  vox1="$work_dir/synth/voxceleb"
  augmentation="$work_dir/synth/augmentation"
  train_config="${train_config:-$repo/configs/demo.flags}"
  num_train_shards="${num_train_shards:-2}"; num_test_shards="${num_test_shards:-2}"
  backend_data="${backend_data:-$work_dir/data/train-*.tfrecord}"
else
  augmentation="$work_dir/augmentation"
  train_config="${train_config:-$repo/configs/paper_voxceleb1.flags}"
  num_train_shards="${num_train_shards:-64}"; num_test_shards="${num_test_shards:-8}"
  backend_data="${backend_data:-$work_dir/data/train-*.tfrecord}"
fi
data="$work_dir/data"
model_dir="$work_dir/model"
exports="$work_dir/exports"
embeddings="$work_dir/embeddings"
layers="fc1 fc2"

say() { echo "$(basename "$0"): $*"; }
run() { echo "+ $*" >&2; "$@"; }
stage_on() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# Every trial id must name test audio (and a real corpus must have its known counts)
# before any shard is written: a missing utterance then fails here, not at step 50,000.
check_trial_ids() {
  local trial_paths=("${trial_lists[@]#*:}") expect=()
  [ -z "${1:-}" ] || expect=(--expect="$1")
  run "$python" -m tfspk.corpora.check --dev_root="$dev_root" --test_root="$test_root" \
    --meta="$meta" --trials="$(IFS=,; echo "${trial_paths[*]}")" "${expect[@]}"
}

# The dev and test audio roots (each holding wav/): two trees as VoxCeleb1 ships
# (vox1_dev_wav/, vox1_test_wav/ or dev/, test/), or one tree holding both parts.
locate_trees() {
  dev_root=""; test_root=""
  if [ -d "$vox1/wav" ]; then
    dev_root="$vox1"; test_root="$vox1"
  fi
  for candidate in vox1_dev_wav dev; do
    if [ -z "$dev_root" ] && [ -d "$vox1/$candidate/wav" ]; then dev_root="$vox1/$candidate"; fi
  done
  for candidate in vox1_test_wav test; do
    if [ -z "$test_root" ] && [ -d "$vox1/$candidate/wav" ]; then test_root="$vox1/$candidate"; fi
  done
  meta="$vox1/vox1_meta.csv"
  trial_lists=()  # name:path, scored in stage 6; official and cleaned O lists
  for name in veri_test veri_test2; do
    [ ! -f "$vox1/$name.txt" ] || trial_lists+=("$name:$vox1/$name.txt")
  done
}

# Every problem with the real corpus at once, so one run of stage 0 lists them all.
check_real_corpus() {
  local problems=()
  [ -n "$vox1" ] || problems+=("--vox1 (or \$VOX1) is not set")
  [ -n "$dev_root" ] || problems+=("$vox1: no vox1_dev_wav/wav, dev/wav or wav (VoxCeleb1 dev audio)")
  [ -n "$test_root" ] || problems+=("$vox1: no vox1_test_wav/wav, test/wav or wav (VoxCeleb1 test audio)")
  for file in vox1_meta.csv veri_test.txt veri_test2.txt; do
    [ -f "$vox1/$file" ] || problems+=("$vox1/$file: missing")
  done
  [ -n "$musan" ] && [ -d "$musan/noise" ] && [ -d "$musan/music" ] && [ -d "$musan/speech" ] \
    || problems+=("--musan '$musan': not a MUSAN root with noise/, music/ and speech/")
  [ -n "$rirs" ] && [ -d "$rirs/simulated_rirs" ] \
    || problems+=("--rirs '$rirs': not a RIRS_NOISES root with simulated_rirs/")
  if [ ${#problems[@]} -gt 0 ]; then
    for problem in "${problems[@]}"; do say "$problem" >&2; done
    say "see recipes/voxceleb1/README.md for the expected layout, or use --synthetic true" >&2
    exit 1
  fi
}

locate_trees
if [ "$stage" -gt 0 ] && { [ -z "$dev_root" ] || [ -z "$test_root" ] \
                           || [ ${#trial_lists[@]} -eq 0 ]; }; then
  say "no corpus with trial lists at '$vox1'; run stage 0 first" >&2; exit 1
fi

if stage_on 0; then
  if [ "$synthetic" = true ]; then
    say "stage 0: generating a synthetic VoxCeleb1 ($synth_speakers speakers x" \
        "$synth_utts utterances, $synth_test_speakers test speakers) and MUSAN/RIRS_NOISES" \
        "stand-ins with espeak-ng under $work_dir/synth"
    rm -rf "$vox1" "$augmentation"  # a fresh corpus, never mixed with an older one
    mkdir -p "$work_dir/synth"
    run "$python" -m tfrecords_tools.synth --kind=voxceleb --output_dir="$vox1" \
      --num_speakers="$synth_speakers" --utts_per_speaker="$synth_utts" \
      --num_test_speakers="$synth_test_speakers" --seed="$seed" \
      --num_workers="$synth_workers"
    run "$python" -m tfrecords_tools.synth --kind=augmentation --output_dir="$augmentation" \
      --num_speakers="$synth_babble_speakers" --utts_per_speaker=3 \
      --num_noise="$synth_noise" --num_music="$synth_music" \
      --rooms_per_size="$synth_rooms" --rirs_per_room="$synth_rirs_per_room" \
      --seed="$seed" --num_workers="$synth_workers"
    locate_trees
  else
    say "stage 0: checking VoxCeleb1 at ${vox1:-(unset)}, MUSAN at ${musan:-(unset)}," \
        "RIRS_NOISES at ${rirs:-(unset)}"
    check_real_corpus
    check_trial_ids "$expect_counts"
    for name in list_test_hard2 list_test_all2; do
      [ ! -f "$vox1/$name.txt" ] || say "found $vox1/$name.txt (VoxCeleb1-H/E); not" \
        "scored here: it needs dev and test embeddings in one file"
    done
    mkdir -p "$augmentation"
    ln -sfn "$musan" "$augmentation/musan"
    ln -sfn "$rirs" "$augmentation/RIRS_NOISES"
    say "dev audio: $dev_root/wav, test audio: $test_root/wav, augmentation: $augmentation"
  fi
fi

if stage_on 1; then
  say "stage 1: TFRecord shards: train = dev speakers of $dev_root," \
      "test = test speakers of $test_root (Set column of $meta) -> $data"
  check_trial_ids
  for split in train test; do
    if [ "$split" = train ]; then root="$dev_root"; subset=dev; shards="$num_train_shards"
    else root="$test_root"; subset=test; shards="$num_test_shards"; fi
    run "$python" -m tfrecords_tools.build --input_format=voxceleb --input="$root" \
      --voxceleb_subset="$subset" --voxceleb_meta="$meta" --output_dir="$data" \
      --split="$split" --num_shards="$shards" --num_workers="$nj" $build_flags
  done
fi

if stage_on 2; then
  say "stage 2: training with $train_config (paths and --max_steps overridden) -> $model_dir"
  [ -d "$augmentation" ] || { say "no augmentation data at $augmentation; run stage 0" >&2; exit 1; }
  validation_trials="${trial_lists[-1]#*:}"  # the cleaned list when there is one
  train_args=(--flagfile="$train_config" --train_data="$data/train-*.tfrecord"
              --validation_data="$data/test-*.tfrecord" --validation_trials="$validation_trials"
              --model_dir="$model_dir" --augmentation_data="$augmentation")
  [ -z "$max_steps" ] || train_args+=(--max_steps="$max_steps")
  # shellcheck disable=SC2086  # train_flags is a list of flags
  run "$python" -m tfspk.train "${train_args[@]}" $train_flags
fi

if stage_on 3; then
  say "stage 3: exporting SavedModels of the fc1 and fc2 embeddings -> $exports/voxceleb1_{fc1,fc2}/1"
  for layer in $layers; do
    rm -rf "$exports/voxceleb1_$layer/1"  # versions are immutable: replace this recipe's own
    run "$python" -m tfspk.export --model_dir="$model_dir" \
      --export_dir="$exports/voxceleb1_$layer" --embedding_layer="$layer" --version=1
  done
fi

if stage_on 4; then
  say "stage 4: extracting fc1 and fc2 embeddings of the dev (backend training) and" \
      "test utterances -> $embeddings"
  # Every layer from one run of the network (the export's `embeddings` signature; any
  # of the per-layer exports has it), one npz per layer.
  one_export="$exports/voxceleb1_${layers##* }/1"
  run "$python" -m eval.extract --saved_model="$one_export" --layers="${layers// /,}" \
    --input_format=tfrecords --input="$backend_data" \
    --output="$embeddings/{layer}/dev.npz"
  run "$python" -m eval.extract --saved_model="$one_export" --layers="${layers// /,}" \
    --input_format=tfrecords --input="$data/test-*.tfrecord" \
    --output="$embeddings/{layer}/test.npz"
fi

if stage_on 5; then
  say "stage 5: training LDA($lda_dim)+PLDA backends on the dev embeddings ->" \
      "$work_dir/backend/{fc1,fc2}_plda/backend"
  first_list="${trial_lists[0]#*:}"
  for layer in $layers; do
    # eval.score trains, saves and (as a by-product) scores the official list.
    run "$python" -m eval.score --trials="$first_list" \
      --embeddings="$embeddings/$layer/test.npz" --backend=plda \
      --backend_train="$embeddings/$layer/dev.npz" --lda_dim="$lda_dim" \
      --output_dir="$work_dir/backend/${layer}_plda"
  done
fi

if stage_on 6; then
  say "stage 6: scoring ${trial_lists[*]%%:*} with cosine and PLDA for fc1 and fc2" \
      "-> $work_dir/scores"
  for entry in "${trial_lists[@]}"; do
    list="${entry%%:*}"; trials="${entry#*:}"
    for layer in $layers; do
      run "$python" -m eval.score --trials="$trials" \
        --embeddings="$embeddings/$layer/test.npz" --backend=cosine \
        --output_dir="$work_dir/scores/$list/${layer}_cosine"
      run "$python" -m eval.score --trials="$trials" \
        --embeddings="$embeddings/$layer/test.npz" --backend=plda \
        --backend_dir="$work_dir/backend/${layer}_plda/backend" \
        --output_dir="$work_dir/scores/$list/${layer}_plda"
    done
  done
fi

if stage_on 7; then
  say "stage 7: Table 4-style report per trial list -> $work_dir/report/<list>/table.md"
  for entry in "${trial_lists[@]}"; do
    list="${entry%%:*}"
    runs=""
    for layer in $layers; do
      for backend in cosine plda; do
        runs+="${runs:+,}CNN $layer=$work_dir/scores/$list/${layer}_$backend"
      done
    done
    say "trial list $list:"
    run "$python" -m eval.report --runs="$runs" --output_dir="$work_dir/report/$list"
  done
fi
say "done (stages $stage to $stop_stage)"
