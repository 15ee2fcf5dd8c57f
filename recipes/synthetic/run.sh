#!/usr/bin/env bash
# CPU-scale reproduction of the tables of Shon, Tang & Glass (SLT 2018) on an espeak-ng
# corpus: Table 1 (relu_all vs linear_fc1), Table 2 (fc1 vs fc2), Table 4 (i-vector,
# x-vector and CNN fc2, with and without augmentation, each with cosine and LDA+PLDA,
# plus the MFCC mean+std baseline) and the frame-level CNN, in one report with DET curves.
#
#   recipes/synthetic/run.sh                             # all stages, ~60 min on 2 cores
#   recipes/synthetic/run.sh --stage 6 --stop_stage 7    # rescore and report only
#   recipes/synthetic/run.sh --speakers 20 --max_steps 50 --work_dir /tmp/small
#
# Stages: 0 corpus, 1 tfrecords, 2 train, 3 export, 4 embeddings, 5 i-vectors, 6 score,
# 7 report. Every finished unit of work leaves a marker in WORK/done/ and is skipped on
# a rerun (delete the marker, or the work dir, to redo it). Options are `--name value`
# or `--name=value` for every variable below; see recipes/synthetic/README.md.
set -euo pipefail

# ---- options (each one settable as --name) ----------------------------------------
stage=0
stop_stage=7
work_dir=exp/synthetic   # everything this recipe writes
speakers=100             # training speakers
test_speakers=40         # unseen test speakers (veri_test.txt)
utts=12                  # utterances per speaker
sessions=3               # sessions (channels) per speaker
babble_speakers=8        # augmentation corpus sizes
noise=10
music=4
rooms=2                  # simulated rooms per room size
rirs_per_room=2
max_steps=""             # overrides every flagfile's --max_steps (default there: 1500)
train_flags=""           # more tfspk.train flags for every model, appended last
ubm_components=256       # i-vector UBM size
ivector_dim=200          # i-vector dimension
ubm_iters=4              # UBM EM iterations per split size
ubm_final_iters=8
tv_iters=5
lda_dim=200              # LDA dimension before PLDA (capped by #speakers - 1)
systems="cnn_relu_all cnn_linear_fc1 cnn_noaug xvector xvector_noaug frame_level"
nj="$(nproc)"            # synthesis and shard-writing processes
seed=0
python="${PYTHON:-python}"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-1}"
}

options=(stage stop_stage work_dir speakers test_speakers utts sessions babble_speakers
         noise music rooms rirs_per_room max_steps train_flags ubm_components ivector_dim
         ubm_iters ubm_final_iters tv_iters lda_dim systems nj seed python)
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
for number in stage stop_stage speakers test_speakers utts sessions babble_speakers noise \
              music rooms rirs_per_room ubm_components ivector_dim ubm_iters \
              ubm_final_iters tv_iters lda_dim nj seed; do
  [[ "${!number}" =~ ^[0-9]+$ ]] || { echo "$0: --$number must be a number" >&2; exit 1; }
done
[ -z "$max_steps" ] || [[ "$max_steps" =~ ^[1-9][0-9]*$ ]] \
  || { echo "$0: --max_steps must be a positive number" >&2; exit 1; }
[ "$test_speakers" -ge 2 ] || { echo "$0: --test_speakers must be at least 2" >&2; exit 1; }

# ---- the systems: name -> flagfile | extra training flags | layers | report names ----
# Table 1: relu_all vs linear_fc1 (both with augmentation), fc1 and fc2 of each.
# Table 2: fc1 vs fc2 of the linear_fc1 CNN. Table 4: CNN fc2 (= linear_fc1 fc2),
# x-vector (Kaldi's embedding: segment6 = fc1), each with and without augmentation.
declare -A flagfile extra layers label
flagfile[cnn_relu_all]=configs/synthetic_paper_cnn.flags;  extra[cnn_relu_all]="--variant=relu_all"
flagfile[cnn_linear_fc1]=configs/synthetic_paper_cnn.flags; extra[cnn_linear_fc1]="--variant=linear_fc1"
flagfile[cnn_noaug]=configs/synthetic_paper_cnn.flags;     extra[cnn_noaug]="--variant=linear_fc1 --augment_probability=0"
flagfile[xvector]=configs/synthetic_xvector.flags;         extra[xvector]=""
flagfile[xvector_noaug]=configs/synthetic_xvector.flags;   extra[xvector_noaug]="--augment_probability=0"
flagfile[frame_level]=configs/demo.flags;                  extra[frame_level]="--max_steps=1500"
layers[cnn_relu_all]="fc1 fc2"; layers[cnn_linear_fc1]="fc1 fc2"; layers[cnn_noaug]=fc2
layers[xvector]=fc1; layers[xvector_noaug]=fc1; layers[frame_level]=fc2
label[cnn_relu_all]="CNN relu_all"; label[cnn_linear_fc1]="CNN linear_fc1"
label[cnn_noaug]="CNN linear_fc1 no-aug"; label[xvector]="x-vector"
label[xvector_noaug]="x-vector no-aug"; label[frame_level]="frame-level CNN"
for system in $systems; do
  [ -n "${flagfile[$system]:-}" ] || { echo "$0: unknown system '$system' in --systems" \
    "(known: ${!flagfile[*]})" >&2; exit 1; }
done

export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
case "$work_dir" in /*) ;; *) work_dir="$PWD/$work_dir" ;; esac
cd "$repo"  # python -m finds tfspk, eval and tfrecords_tools; configs/ resolves

corpus="$work_dir/corpus"
augmentation="$work_dir/augmentation"
data="$work_dir/data"
trials="$corpus/veri_test.txt"
done_dir="$work_dir/done"
timings="$work_dir/timings.tsv"
mkdir -p "$done_dir"

say() { echo "$(basename "$0"): $*"; }
run() { echo "+ $*" >&2; "$@"; }
stage_on() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# once KEY COMMAND...: runs COMMAND unless WORK/done/KEY exists, then writes the marker
# and appends the seconds taken to WORK/timings.tsv. A failed command leaves no marker.
once() {
  local key="$1"; shift
  if [ -f "$done_dir/$key" ]; then say "  $key: done before, skipped"; return 0; fi
  local start=$SECONDS
  "$@"
  printf '%s\t%s\n' "$key" "$((SECONDS - start))" >> "$timings"
  date -u +%FT%TZ > "$done_dir/$key"
}
need() { [ -e "$1" ] || { say "$1 is missing: run stage $2 first" >&2; exit 1; }; }

if stage_on 0; then
  say "stage 0: espeak-ng corpus ($speakers + $test_speakers speakers x $utts utterances," \
      "$sessions sessions) and augmentation sources -> $work_dir"
  synth_corpus() {
    rm -rf "$corpus"  # never mix with a half-written older corpus
    run "$python" -m tfrecords_tools.synth --kind=voxceleb --output_dir="$corpus" \
      --num_speakers="$((speakers + test_speakers))" --num_test_speakers="$test_speakers" \
      --utts_per_speaker="$utts" --sessions_per_speaker="$sessions" --seed="$seed" \
      --num_workers="$nj"
  }
  synth_augmentation() {
    rm -rf "$augmentation"
    run "$python" -m tfrecords_tools.synth --kind=augmentation --output_dir="$augmentation" \
      --num_speakers="$babble_speakers" --utts_per_speaker=3 --num_noise="$noise" \
      --num_music="$music" --rooms_per_size="$rooms" --rirs_per_room="$rirs_per_room" \
      --seed="$seed" --num_workers="$nj"
  }
  once corpus synth_corpus
  once augmentation synth_augmentation
fi

if stage_on 1; then
  say "stage 1: TFRecord shards (train = dev speakers, test = test speakers) -> $data"
  need "$trials" 0
  for split in train test; do
    subset=dev; [ "$split" = train ] || subset=test
    once "shards_$split" run "$python" -m tfrecords_tools.build --input_format=voxceleb \
      --input="$corpus" --voxceleb_subset="$subset" --output_dir="$data" --split="$split" \
      --num_shards=2 --num_workers="$nj" --overwrite
  done
fi

if stage_on 2; then
  say "stage 2: training $systems -> $work_dir/models/<system>"
  need "$data/train.metadata.json" 1
  for system in $systems; do
    train_args=(--flagfile="${flagfile[$system]}" --train_data="$data/train-*.tfrecord"
                --validation_data="$data/test-*.tfrecord" --validation_trials="$trials"
                --model_dir="$work_dir/models/$system" --seed="$seed")
    # The no-augmentation systems get no augmentation sources at all.
    [[ "${extra[$system]}" == *"--augment_probability=0"* ]] \
      || train_args+=(--augmentation_data="$augmentation")
    # shellcheck disable=SC2086  # extra and train_flags are lists of flags
    once "train_$system" run "$python" -m tfspk.train "${train_args[@]}" ${extra[$system]} \
      ${max_steps:+--max_steps=$max_steps} $train_flags
  done
fi

if stage_on 3; then
  say "stage 3: SavedModels -> $work_dir/exports/<system>_<layer>/1"
  for system in $systems; do
    need "$work_dir/models/$system/model_spec.json" 2
    for layer in ${layers[$system]}; do
      export_model() {
        rm -rf "$work_dir/exports/$1_$2/1"  # versions are immutable: replace our own
        run "$python" -m tfspk.export --model_dir="$work_dir/models/$1" \
          --export_dir="$work_dir/exports/$1_$2" --embedding_layer="$2" --version=1
      }
      once "export_${system}_$layer" export_model "$system" "$layer"
    done
  done
fi

if stage_on 4; then
  say "stage 4: embeddings of the training (backend) and test utterances ->" \
      "$work_dir/embeddings/<system>/{train,test}.npz"
  for split in train test; do
    once "embed_mfcc_$split" run "$python" -m eval.baseline --input_format=tfrecords \
      --input="$data/$split-*.tfrecord" --output="$work_dir/embeddings/mfcc/$split.npz"
  done
  for system in $systems; do
    # Every layer of a system from one run of its network: any of its exports has the
    # `embeddings` signature with all of them; one npz per layer.
    system_layers=(${layers[$system]})
    one_export="$work_dir/exports/${system}_${system_layers[-1]}/1"
    need "$one_export" 3
    layer_list="${system_layers[*]}"
    for split in train test; do
      once "embed_${system}_$split" run "$python" -m eval.extract \
        --saved_model="$one_export" --layers="${layer_list// /,}" \
        --input_format=tfrecords --input="$data/$split-*.tfrecord" \
        --output="$work_dir/embeddings/${system}_{layer}/$split.npz"
    done
  done
fi

if stage_on 5; then
  say "stage 5: i-vectors (UBM $ubm_components, T $ivector_dim, trained on the training" \
      "speakers only) -> $work_dir/embeddings/ivector/{train,test}.npz"
  need "$data/train.metadata.json" 1
  ivector=("$python" -m eval.ivector --input_format=tfrecords --ubm="$work_dir/ivector/ubm.npz"
           --tv="$work_dir/ivector/tv.npz" --num_components="$ubm_components"
           --ivector_dim="$ivector_dim" --ubm_iters="$ubm_iters"
           --ubm_final_iters="$ubm_final_iters" --tv_iters="$tv_iters" --seed="$seed")
  mkdir -p "$work_dir/ivector"
  once ivector_ubm run "${ivector[@]}" --stage=train_ubm --input="$data/train-*.tfrecord"
  once ivector_tv run "${ivector[@]}" --stage=train_tv --input="$data/train-*.tfrecord"
  for split in train test; do
    once "embed_ivector_$split" run "${ivector[@]}" --stage=extract \
      --input="$data/$split-*.tfrecord" --output="$work_dir/embeddings/ivector/$split.npz"
  done
fi

# Report rows: "label<TAB>embeddings name", in table order.
rows() {
  for system in $systems; do
    for layer in ${layers[$system]}; do
      printf '%s %s\t%s\n' "${label[$system]}" "$layer" "${system}_$layer"
    done
  done
  printf 'i-vector\tivector\nMFCC mean+std\tmfcc\n'
}

if stage_on 6; then
  say "stage 6: cosine and LDA($lda_dim)+PLDA scores of $trials -> $work_dir/scores"
  while IFS=$'\t' read -r name embeddings; do
    test_npz="$work_dir/embeddings/$embeddings/test.npz"
    need "$test_npz" 4
    once "score_${embeddings}_cosine" run "$python" -m eval.score --trials="$trials" \
      --embeddings="$test_npz" --backend=cosine \
      --output_dir="$work_dir/scores/${embeddings}_cosine"
    once "score_${embeddings}_plda" run "$python" -m eval.score --trials="$trials" \
      --embeddings="$test_npz" --backend=plda \
      --backend_train="$work_dir/embeddings/$embeddings/train.npz" --lda_dim="$lda_dim" \
      --output_dir="$work_dir/scores/${embeddings}_plda"
  done < <(rows)
fi

if stage_on 7; then
  say "stage 7: one report of every system -> $work_dir/report/{table.md,table.csv,det.png}"
  mkdir -p "$work_dir/report"
  runs_json="$work_dir/report/runs.json"
  {
    echo "["
    separator=""
    while IFS=$'\t' read -r name embeddings; do
      for backend in cosine plda; do
        need "$work_dir/scores/${embeddings}_$backend/metrics.json" 6
        printf '%s  {"system": "%s", "dir": "%s"}' "$separator" "$name" \
          "$work_dir/scores/${embeddings}_$backend"
        separator=$',\n'
      done
    done < <(rows)
    printf '\n]\n'
  } > "$runs_json"
  # Always rewritten (cheap): the report follows whatever stage 6 last produced.
  run "$python" -m eval.report --runs_json="$runs_json" --output_dir="$work_dir/report"
  cat "$work_dir/report/table.md"
fi
say "done (stages $stage to $stop_stage); seconds per step in $timings"
