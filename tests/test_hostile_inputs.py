"""Hostile inputs to every CLI of the data and training path, and to trial lists.

Each case asserts a clear refusal (a ValueError subclass, or a non-zero exit with the
file or flag named and no traceback for user errors) and that nothing good was lost
(previously built shards still verify, flags.txt of a running model is untouched).
CLIs run in-process (`main(argv, flag_values=...)`) except where the absence of a
traceback on stderr is the point.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile
from absl import flags

import shards_fixtures as fx
from tfspk.corpora.records import Utterance
from tfspk.locking import DirectoryLock, LockHeldError
from tfspk.shards import metadata as meta
from tfspk.shards.build import BuildConfig, BuildError, build_split
from tfspk.shards.verify import ShardSetError, check_shard_set, verify_split
from tfspk.trials import TrialListError, read_trials

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


# ------------------------------------------------------------------------ helpers
def run_cli(module, args, capsys):
    """Parses `args` for `module` and runs its main in-process.

    Returns (status, text): status "flags" with absl's message when parsing refuses,
    else the exit status (0, 1, 2); text is the error message or stderr."""
    values = flags.FlagValues()
    module.define_flags(values)
    capsys.readouterr()
    try:
        argv = values([module.__name__] + list(args))  # the program name + positionals
    except flags.Error as error:
        return "flags", str(error)
    try:
        module.main(argv, flag_values=values)
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
        if not isinstance(exit_.code, int):
            print(exit_.code, file=sys.stderr)
    captured = capsys.readouterr()
    return status, captured.err + captured.out


def run_subprocess(args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def write_wav(path, pcm, rate=16000, subtype="PCM_16"):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    soundfile.write(str(path), pcm, rate, subtype=subtype)
    return str(path)


def good_files(folder, count=4):
    return [write_wav(os.path.join(folder, f"g{i}.wav"), fx.speech_like(1.0, seed=i))
            for i in range(count)]


def write_manifest(path, entries):
    """entries: (path, speaker, utt_id)."""
    with open(path, "w") as stream:
        stream.writelines(f"{p}\t{s}\t{u}\n" for p, s, u in entries)
    return str(path)


class LockHolder:
    """Another process holding a directory's lock, as a running build or training
    would (it records the command it was given)."""

    SCRIPT = textwrap.dedent("""
        import sys, time
        from tfspk.locking import DirectoryLock
        lock = DirectoryLock(sys.argv[1], command=["python", "-m", sys.argv[2]]).acquire()
        print("LOCKED", flush=True)
        time.sleep(600)
    """)

    def __init__(self, directory, program="tfrecords_tools.build"):
        self.process = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(directory),
                                         program], cwd=REPO, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout.readline().strip() == "LOCKED"
        self.pid = self.process.pid

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A good split: 4 utterances of 2 speakers in 2 shards, plus its manifest."""
    root = tmp_path_factory.mktemp("built")
    manifest, _ = fx.manifest(str(root / "audio"), count=4)
    out = str(root / "data")
    from tfspk.shards.build import build_from_corpus
    build_from_corpus("manifest", manifest, BuildConfig(out, "train", 2))
    assert verify_split(out, "train").ok
    return {"manifest": manifest, "data": out, "root": root}


def copy_data(built, tmp_path):
    target = str(tmp_path / "data")
    shutil.copytree(built["data"], target)
    return target


def build_args(manifest, out, *extra):
    return ["--input_format=manifest", f"--input={manifest}", f"--output_dir={out}",
            "--split=train", "--num_shards=2", *extra]


# -------------------------------------------------------------- build: flags
@pytest.mark.parametrize("flag,named", [
    ("--num_shards=0", "num_shards"),
    ("--num_shards=-3", "num_shards"),
    ("--num_workers=0", "num_workers"),
    ("--max_reject_fraction=1.5", "max_reject_fraction"),
    ("--max_reject_fraction=-0.1", "max_reject_fraction"),
    ("--sample_rate=0", "sample_rate"),
    ("--min_duration=-1", "min_duration"),
    ("--compression=zip", "compression"),
    ("--input_format=wav", "input_format"),
    ("--voxceleb_subset=dev", "voxceleb_subset"),
])
def test_build_refuses_impossible_flags(built, tmp_path, capsys, flag, named):
    from tfrecords_tools import build
    status, text = run_cli(build, build_args(built["manifest"], tmp_path / "o", flag),
                           capsys)
    assert status == "flags" and named in text
    assert not os.path.exists(tmp_path / "o")


# -------------------------------------------------------------- build: inputs
def test_build_missing_file_is_a_reject_and_the_exit_status_follows_the_limit(
        tmp_path, capsys):
    from tfrecords_tools import build
    files = good_files(str(tmp_path / "a"), 4)
    entries = [(p, f"s{i % 2}", f"u{i}") for i, p in enumerate(files)]
    entries.insert(2, (str(tmp_path / "a" / "gone.wav"), "s0", "gone"))
    manifest = write_manifest(tmp_path / "list.tsv", entries)
    status, text = run_cli(build, build_args(manifest, tmp_path / "o1"), capsys)
    assert status == 1 and "1 of 5 inputs rejected" in text
    status, _ = run_cli(build, build_args(manifest, tmp_path / "o2",
                                          "--max_reject_fraction=0.25"), capsys)
    assert status == 0
    rows = meta.read_rejects_tsv(str(tmp_path / "o2" / "train.rejects.tsv"))
    assert [(os.path.basename(r[0]), r[1].split(":")[0], r[2]) for r in rows] == [
        ("gone.wav", "missing", "gone")]
    assert verify_split(str(tmp_path / "o2"), "train").ok


@pytest.mark.parametrize("kind", ["missing", "dc_only", "zeros", "too_quiet"])
def test_build_that_rejects_everything_fails_and_keeps_no_empty_shards(tmp_path, capsys,
                                                                       kind):
    from tfrecords_tools import build
    folder = tmp_path / "a"
    paths = []
    for i in range(3):
        path = folder / f"x{i}.wav"
        if kind == "dc_only":
            write_wav(path, np.full(16000, 0.3, np.float32))
        elif kind == "zeros":
            write_wav(path, np.zeros(16000, np.int16))
        elif kind == "too_quiet":
            write_wav(path, (fx.speech_like(1.0, seed=i) // 2000).astype(np.int16))
        paths.append(str(path))
    manifest = write_manifest(tmp_path / "list.tsv", [(p, "s", f"x{i}")
                                                     for i, p in enumerate(paths)])
    out = tmp_path / "o"
    status, text = run_cli(build, build_args(manifest, out, "--max_reject_fraction=1.0"),
                           capsys)
    code = "missing" if kind == "missing" else "silent"
    assert status == 2 and f"all 3 inputs were rejected ({code} x3)" in text
    assert "train.rejects.tsv" in text and "Traceback" not in text
    left = sorted(os.listdir(out))
    assert not [n for n in left if ".tfrecord" in n] and "train.metadata.json" not in left
    assert len(meta.read_rejects_tsv(str(out / "train.rejects.tsv"))) == 3


def test_build_refuses_more_shards_than_utterances(built, tmp_path, capsys):
    from tfrecords_tools import build
    status, text = run_cli(build, build_args(built["manifest"], tmp_path / "o",
                                             "--num_shards=20"), capsys)
    assert status == 2
    assert "--num_shards=20 but split 'train' has only 4 utterances" in text
    assert not os.path.exists(tmp_path / "o" / "train.plan.json")


@pytest.mark.parametrize("content,named", [
    (None, "list.tsv: file not found"),
    ("only-one-field\n", "list.tsv:1: expected path<TAB>speaker"),
    ("a.wav\ts\tu\nb.wav\ts\tu\n", "list.tsv:2: utterance id 'u' already appears"),
    ("", "list.tsv: no utterances"),
])
def test_build_refuses_a_malformed_manifest_naming_file_and_line(tmp_path, capsys,
                                                                 content, named):
    from tfrecords_tools import build
    manifest = tmp_path / "list.tsv"
    if content is not None:
        manifest.write_text(content)
    status, text = run_cli(build, build_args(str(manifest), tmp_path / "o"), capsys)
    assert status == 2 and named in text


def test_build_refuses_a_bad_split_name_and_a_bad_speaker_map(built, tmp_path, capsys):
    from tfrecords_tools import build
    status, text = run_cli(build, ["--input_format=manifest", f"--input={built['manifest']}",
                                   f"--output_dir={tmp_path / 'o'}", "--split=a/b",
                                   "--num_shards=1"], capsys)
    assert status == 2 and "--split" in text and "'a/b'" in text
    labels = tmp_path / "labels.tsv"
    labels.write_text("0\tspk0\nzero\tspk1\n")
    status, text = run_cli(build, build_args(built["manifest"], tmp_path / "o",
                                             f"--speakers_tsv={labels}"), capsys)
    assert status == 2 and "labels.tsv: line 2: expected 'label<TAB>speaker'" in text


def test_build_rerun_with_other_settings_is_refused_and_the_split_still_verifies(
        built, tmp_path, capsys):
    from tfrecords_tools import build
    out = copy_data(built, tmp_path)
    status, text = run_cli(build, build_args(built["manifest"], out,
                                             "--compression=gzip"), capsys)
    assert status == 2 and "train.plan.json" in text and "--overwrite" in text
    assert verify_split(out, "train").ok


def test_build_float_file_beyond_full_scale_is_rejected_with_its_peak(tmp_path):
    files = good_files(str(tmp_path / "a"), 2)
    loud = write_wav(tmp_path / "a" / "loud.wav", 1.8 * fx.speech_like(1.0, 5) / 32768.0 /
                     np.abs(fx.speech_like(1.0, 5) / 32768.0).max(), subtype="FLOAT")
    utts = [Utterance(f"u{i}", p, "s") for i, p in enumerate(files)]
    utts.append(Utterance("loud", loud, "s"))
    result = build_split(utts, BuildConfig(str(tmp_path / "o"), "train", 1,
                                           max_reject_fraction=0.5))
    rows = meta.read_rejects_tsv(str(tmp_path / "o" / "train.rejects.tsv"))
    assert result.metadata["num_examples"] == 2
    assert rows[0][2] == "loud" and rows[0][1].startswith("out_of_range: float samples "
                                                          "reach 1.8, beyond ±1.0")


# --------------------------------------------------------- build: concurrency
def test_second_build_into_a_locked_directory_is_refused_naming_the_holder(
        built, tmp_path, capsys):
    from tfrecords_tools import build
    out = copy_data(built, tmp_path)
    holder = LockHolder(out)
    try:
        status, text = run_cli(build, build_args(built["manifest"], out, "--overwrite"),
                               capsys)
        assert status == 2
        assert f"in use by pid {holder.pid} on host" in text
        assert "python -m tfrecords_tools.build" in text and "tfspk.lock" in text
        with pytest.raises(LockHeldError, match=f"pid {holder.pid}"):
            build_split([], BuildConfig(out, "other", 1))
    finally:
        holder.kill()
    # --overwrite was refused before it deleted anything.
    assert verify_split(out, "train").ok


def test_lock_of_a_killed_build_is_taken_over_with_a_warning(built, tmp_path, caplog):
    out = str(tmp_path / "o")
    holder = LockHolder(out)
    holder.kill()  # SIGKILL: its record stays in tfspk.lock
    assert json.loads(open(os.path.join(out, "tfspk.lock")).read())["pid"] == holder.pid
    with caplog.at_level("WARNING", logger="tfspk.locking"):
        from tfspk.shards.build import build_from_corpus
        result = build_from_corpus("manifest", built["manifest"],
                                   BuildConfig(out, "train", 2))
    assert result.metadata["num_examples"] == 4
    assert f"took over a stale lock left by pid {holder.pid}" in caplog.text
    assert not os.path.exists(os.path.join(out, "tfspk.lock"))


def test_lock_is_reentrant_in_one_process_and_exclusive_across_processes(tmp_path):
    with DirectoryLock(str(tmp_path)) as outer:
        with DirectoryLock(str(tmp_path)):
            pass
        assert os.path.exists(outer.path)  # still held by the outer one
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from tfspk.locking import DirectoryLock\n"
             "try:\n DirectoryLock(sys.argv[1]).acquire()\nexcept Exception as e:\n"
             " print(type(e).__name__, e)", str(tmp_path)],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert probe.stdout.startswith("LockHeldError") and f"pid {os.getpid()}" in probe.stdout
    assert not os.path.exists(outer.path)


# ------------------------------------------------------------ inspect / verify
def test_inspect_refuses_bad_data_dirs(built, tmp_path, capsys):
    from tfrecords_tools import inspect
    status, text = run_cli(inspect, [f"--data_dir={tmp_path / 'nope'}"], capsys)
    assert status == 2 and "nope: not a directory" in text
    os.makedirs(tmp_path / "empty")
    status, text = run_cli(inspect, [f"--data_dir={tmp_path / 'empty'}"], capsys)
    assert status == 2 and "no <split>.metadata.json found" in text
    status, text = run_cli(inspect, [f"--data_dir={built['data']}", "--num_bins=0"], capsys)
    assert status == "flags" and "num_bins" in text


@pytest.mark.parametrize("damage,named", [
    ("metadata_json", "train.metadata.json: line 1: invalid JSON"),
    ("sidecar", "train-00001-of-00002.tfrecord.json: file not found"),
])
def test_inspect_names_a_damaged_file(built, tmp_path, capsys, damage, named):
    from tfrecords_tools import inspect
    out = copy_data(built, tmp_path)
    if damage == "metadata_json":
        open(os.path.join(out, "train.metadata.json"), "w").write("{not json")
    else:
        os.remove(os.path.join(out, "train-00001-of-00002.tfrecord.json"))
    status, text = run_cli(inspect, [f"--data_dir={out}"], capsys)
    assert status == 2 and named in text and "Traceback" not in text


@pytest.mark.parametrize("damage,named", [
    ("truncate", "train-00000-of-00002.tfrecord: sha256"),
    ("extra_shard", "train-00005-of-00009.tfrecord: shard file not listed"),
    ("rejects", "train.rejects.tsv: missing"),
    ("delete_shard", "train-00001-of-00002.tfrecord: missing"),
])
def test_verify_names_each_damaged_file(built, tmp_path, capsys, damage, named):
    from tfrecords_tools import verify
    out = copy_data(built, tmp_path)
    shard = os.path.join(out, "train-00000-of-00002.tfrecord")
    if damage == "truncate":
        data = open(shard, "rb").read()
        open(shard, "wb").write(data[: len(data) // 2])
    elif damage == "extra_shard":
        shutil.copy(shard, os.path.join(out, "train-00005-of-00009.tfrecord"))
    elif damage == "rejects":
        os.remove(os.path.join(out, "train.rejects.tsv"))
    else:
        os.remove(os.path.join(out, "train-00001-of-00002.tfrecord"))
    status, text = run_cli(verify, [f"--data_dir={out}"], capsys)
    assert status == 1 and named in text
    status, text = run_cli(verify, [f"--data_dir={tmp_path / 'nope'}"], capsys)
    assert status == 2 and "nope: not a directory" in text


# ------------------------------------------------------------------- train
def train_args(data_glob, model_dir, *extra):
    return [f"--model_dir={model_dir}", f"--train_data={data_glob}",
            "--conv_filters=8,8,8,8", "--fc_units=8,8", "--batch_size=2", "--max_steps=1",
            *extra]


@pytest.mark.parametrize("flag,named", [
    ("--learning_rate=0", "--learning_rate must be a finite number > 0"),
    ("--learning_rate=-0.1", "--learning_rate must be a finite number > 0"),
    ("--learning_rate=inf", "--learning_rate must be a finite number > 0"),
    ("--batch_size=0", "batch_size"),
    ("--max_steps=0", "max_steps"),
    ("--num_frames=0", "num_frames"),
    ("--checkpoint_every=0", "checkpoint_every"),
    ("--shuffle_buffer=0", "shuffle_buffer"),
    ("--augment_probability=1.5", "augment_probability"),
    ("--augment_probability=-0.5", "augment_probability"),
    ("--momentum=1.0", "--momentum must be in [0, 1)"),
    ("--lr_decay_rate=0", "--lr_decay_rate must be in (0, 1]"),
    ("--lr_decay_rate=1.5", "--lr_decay_rate must be in (0, 1]"),
    ("--weight_decay=-1", "weight_decay"),
    ("--warmup_steps=-1", "warmup_steps"),
    ("--conv_filters=8,0,8,8", "--conv_filters must be a comma-separated list"),
    ("--fc_units=8,x", "--fc_units must be a comma-separated list"),
    ("--margin_warmup_steps=5,2", "--margin_warmup_steps must be two integers"),
    ("--num_ceps=50", "--num_ceps must not exceed --num_mel_bins"),
    ("--scale=0", "--scale must be > 0"),
    ("--validation_data=x*", "--validation_data and --validation_trials go together"),
    ("--verify_shards=maybe", "verify_shards"),
])
def test_train_refuses_impossible_flags(built, tmp_path, capsys, flag, named):
    from tfspk import train
    status, text = run_cli(train, train_args(os.path.join(built["data"], "train-*.tfrecord"),
                                             tmp_path / "m", flag), capsys)
    assert status == "flags" and named in text
    assert not os.path.exists(tmp_path / "m")


@pytest.mark.parametrize("damage,named", [
    ("sidecars", "matches 2 file(s) that are not TFRecord shards: "
                 "train-00000-of-00002.tfrecord.json, train-00001-of-00002.tfrecord.json"),
    ("nothing", "no files match"),
    ("empty", "the 2 shard(s) hold no examples"),
    ("truncate", "train-00000-of-00002.tfrecord: "),
    ("unlisted", "train-00007-of-00009.tfrecord: not listed in train.metadata.json"),
])
def test_train_refuses_bad_shards_before_writing_anything(built, tmp_path, capsys, damage,
                                                          named):
    from tfspk import train
    out = copy_data(built, tmp_path)
    pattern = os.path.join(out, "train-*.tfrecord")
    if damage == "sidecars":
        pattern = os.path.join(out, "train-*")
    elif damage == "nothing":
        pattern = os.path.join(out, "dev-*.tfrecord")
    elif damage == "empty":
        os.makedirs(tmp_path / "empty")
        import tensorflow as tf
        for shard in range(2):
            with tf.io.TFRecordWriter(str(tmp_path / "empty" / f"e{shard}.tfrecord")):
                pass
        pattern = str(tmp_path / "empty" / "*.tfrecord")
        shutil.copy(os.path.join(out, "train.speakers.tsv"), tmp_path / "empty" / "speakers.tsv")
    elif damage == "truncate":
        shard = os.path.join(out, "train-00000-of-00002.tfrecord")
        data = open(shard, "rb").read()
        open(shard, "wb").write(data[:-7])
        named += f"{len(data) - 7} bytes, train.metadata.json says {len(data)}"
    elif damage == "unlisted":
        shutil.copy(os.path.join(out, "train-00000-of-00002.tfrecord"),
                    os.path.join(out, "train-00007-of-00009.tfrecord"))
    status, text = run_cli(train, train_args(pattern, tmp_path / "m"), capsys)
    assert status == 2 and "--train_data=" in text and named in text, text
    assert not os.path.exists(tmp_path / "m")
    with pytest.raises(ShardSetError):
        check_shard_set(pattern)


def test_train_full_check_catches_a_shard_rewritten_at_its_old_size(built, tmp_path):
    out = copy_data(built, tmp_path)
    shard = os.path.join(out, "train-00001-of-00002.tfrecord")
    data = bytearray(open(shard, "rb").read())
    data[-3] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    pattern = os.path.join(out, "train-*.tfrecord")
    assert check_shard_set(pattern).num_examples == 4  # same size: the quick check passes
    with pytest.raises(ShardSetError, match="train-00001-of-00002.tfrecord: sha256"):
        check_shard_set(pattern, level="full")


def _flags_txt(model_dir):
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "flags.txt").write_text("--learning_rate=0.5\n")
    return (model_dir / "flags.txt").read_text()


def test_train_into_a_locked_model_dir_is_refused_and_flags_txt_kept(built, tmp_path,
                                                                     capsys):
    from tfspk import train
    model_dir = tmp_path / "m"
    before = _flags_txt(model_dir)
    holder = LockHolder(model_dir, program="tfspk.train")
    try:
        status, text = run_cli(train, train_args(
            os.path.join(built["data"], "train-*.tfrecord"), model_dir), capsys)
    finally:
        holder.kill()
    assert status == 2
    assert f"m: in use by pid {holder.pid}" in text and "python -m tfspk.train" in text
    assert (model_dir / "flags.txt").read_text() == before
    assert not (model_dir / "checkpoints").exists()


def test_train_with_another_architecture_is_refused_before_flags_txt(built, tmp_path,
                                                                     capsys):
    from tfspk import model_spec as spec_lib
    from tfspk import train
    model_dir = tmp_path / "m"
    before = _flags_txt(model_dir)
    spec_lib.ModelSpec(architecture="xvector", conv_filters=(8, 8, 8, 8, 8),
                       fc_units=(8, 8), num_speakers=2).save(str(model_dir))
    status, text = run_cli(train, train_args(
        os.path.join(built["data"], "train-*.tfrecord"), model_dir), capsys)
    assert status == 2 and "model_spec.json describes a different model" in text
    assert (model_dir / "flags.txt").read_text() == before
    assert not (model_dir / "tfspk.lock").exists()


def test_training_dataset_refuses_empty_shards_instead_of_hanging(tmp_path):
    import tensorflow as tf

    from tfspk import data
    with tf.io.TFRecordWriter(str(tmp_path / "e.tfrecord")):
        pass
    with pytest.raises(data.ShardFilesError, match=r"e.tfrecord: the 1 shard\(s\) hold no"):
        data.train_dataset(str(tmp_path / "e.tfrecord"), batch_size=2)
    (tmp_path / "x.tfrecord.json").write_text("{}")
    with pytest.raises(data.ShardFilesError, match="x.tfrecord.json"):
        data.eval_dataset(str(tmp_path / "*"), batch_size=2)


# ------------------------------------------------------------------ trials
@pytest.mark.parametrize("content,message", [
    ("1 a.wav a.wav\n0 a.wav b.wav\n", "list.txt:1: 1 trial(s) of an utterance against"),
    ("1 a.wav c.wav\n0 a.wav b.wav\n0 a.wav b.wav\n", "list.txt:3: 1 duplicate trial(s)"),
    ("1 a.wav c.wav\n0 a.wav b.wav\n1 b.wav a.wav\n", "list.txt:3: 1 pair(s) with "
                                                      "contradictory labels"),
])
def test_trial_lists_with_bad_pairs_are_refused(tmp_path, content, message):
    path = tmp_path / "list.txt"
    path.write_text(content)
    with pytest.raises(TrialListError) as info:
        read_trials(path, self_trials="error")
    assert message in str(info.value) and isinstance(info.value, ValueError)


# ------------------------------------------------------------ eval.extract
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import export_fixtures
    from tfspk import export

    root = tmp_path_factory.mktemp("model")
    export_fixtures.make_model_dir(str(root / "run"), export_fixtures.tiny_spec())
    return export.export_saved_model(str(root / "run"), str(root / "models" / "spk"),
                                     warmup=False)


def extract_manifest(tmp_path, bad=()):
    files = good_files(str(tmp_path / "a"), 3)
    entries = [(p, f"s{i}", f"u{i}") for i, p in enumerate(files)]
    for kind in bad:
        path = tmp_path / "a" / f"{kind}.wav"
        if kind == "dc_only":
            write_wav(path, np.full(16000, -0.2, np.float32))
        elif kind == "loud_float":
            write_wav(path, np.full(16000, 1.5, np.float32) * np.sin(
                np.arange(16000) / 5.0), subtype="FLOAT")
        entries.append((str(path), "s", kind))
    return write_manifest(tmp_path / "list.tsv", entries)


@pytest.mark.parametrize("bad,limit,status", [
    (("dc_only",), None, 1),
    (("missing",), None, 1),
    (("loud_float",), None, 1),
    (("dc_only", "missing"), "0.5", 0),
])
def test_extract_rejects_bad_utterances_and_embeds_the_rest(saved_model, tmp_path, capsys,
                                                            bad, limit, status):
    from eval import embeddings as embeddings_io
    from eval import extract
    manifest = extract_manifest(tmp_path, bad)
    output = tmp_path / "emb.npz"
    args = [f"--saved_model={saved_model}", "--input_format=manifest", f"--input={manifest}",
            f"--output={output}"] + ([f"--max_reject_fraction={limit}"] if limit else [])
    got, text = run_cli(extract, args, capsys)
    assert got == status, text
    assert list(embeddings_io.load_embeddings(str(output)).ids) == ["u0", "u1", "u2"]
    rows = meta.read_rejects_tsv(str(tmp_path / "emb.rejects.tsv"))
    codes = {"dc_only": "silent", "missing": "missing", "loud_float": "out_of_range"}
    assert [(r[2], r[1].split(":")[0]) for r in rows] == [(k, codes[k]) for k in bad]
    if status:
        assert "--max_reject_fraction" in text and "emb.rejects.tsv" in text


def test_extract_refuses_when_everything_is_rejected_or_inputs_are_missing(
        saved_model, tmp_path, capsys):
    from eval import extract
    write_wav(tmp_path / "a" / "dc.wav", np.full(16000, 0.4, np.float32))
    manifest = write_manifest(tmp_path / "list.tsv", [(str(tmp_path / "a" / "dc.wav"),
                                                       "s", "dc")])
    base = [f"--saved_model={saved_model}", f"--output={tmp_path / 'e.npz'}"]
    status, text = run_cli(extract, base + ["--input_format=manifest",
                                            f"--input={manifest}"], capsys)
    assert status == 2 and "all 1 utterances were rejected" in text
    assert not (tmp_path / "e.npz").exists()
    status, text = run_cli(extract, base + ["--input_format=tfrecords",
                                            f"--input={tmp_path / 'none-*.tfrecord'}"],
                           capsys)
    assert status == 2 and "no TFRecord shards match" in text
    status, text = run_cli(extract, [f"--saved_model={tmp_path / 'nope'}",
                                     f"--output={tmp_path / 'e.npz'}",
                                     "--input_format=manifest", f"--input={manifest}"],
                           capsys)
    assert status == 2 and "--saved_model=" in text and "not a directory" in text
    status, text = run_cli(extract, base + ["--input_format=manifest",
                                            f"--input={manifest}", "--batch_size=0"], capsys)
    assert status == "flags" and "batch_size" in text


def test_extract_library_raises_naming_the_utterance_without_a_rejects_list(saved_model):
    from eval import extract
    from tfspk.audio import AudioError
    utt = extract.LoadedUtterance("dc_one", "s", np.full(16000, 0.1, np.float32), "dc.wav")
    with pytest.raises(AudioError, match="dc.wav: silent: constant signal"):
        extract.extract_embeddings(saved_model, [utt], progress=False)


# ------------------------------------------- real processes: no traceback on stderr
@pytest.mark.parametrize("case", ["build_shards", "train_lr", "train_sidecars", "verify",
                                  "extract"])
def test_user_errors_exit_non_zero_without_a_traceback(built, tmp_path, case):
    data = built["data"]
    if case == "build_shards":
        args = ["tfrecords_tools.build", *build_args(built["manifest"], tmp_path / "o",
                                                     "--num_shards=9")]
        named, code = "--num_shards=9", 2
    elif case == "train_lr":
        args = ["tfspk.train", *train_args(os.path.join(data, "train-*"), tmp_path / "m",
                                           "--learning_rate=-1")]
        named, code = "--learning_rate", 1
    elif case == "train_sidecars":
        args = ["tfspk.train", *train_args(os.path.join(data, "train-*"), tmp_path / "m")]
        named, code = "train-00000-of-00002.tfrecord.json", 2
    elif case == "verify":
        args = ["tfrecords_tools.verify", f"--data_dir={tmp_path / 'nope'}"]
        named, code = "nope: not a directory", 2
    else:
        args = ["eval.extract", f"--saved_model={tmp_path / 'nope'}", "--input_format=manifest",
                f"--input={built['manifest']}", f"--output={tmp_path / 'e.npz'}"]
        named, code = "--saved_model=", 2
    result = run_subprocess(args)
    assert result.returncode == code, result.stderr[-2000:]
    assert named in result.stderr and "Traceback" not in result.stderr
    assert verify_split(data, "train").ok
    assert not os.path.exists(tmp_path / "m")


def test_encode_rejects_bad_audio_but_a_bug_stops_the_build(tmp_path, monkeypatch):
    """Bad files are rejects with a reason; a programming error is not (issue 14)."""
    from tfspk import schema
    from tfspk.shards.encode import EncodeOptions, encode_utterance
    from tfspk.shards.planning import PlanItem
    options = EncodeOptions()
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 20)
    for path, reason in ((tmp_path / "nope.wav", "missing"), (garbage, "")):
        outcome = encode_utterance(PlanItem(0, "u0", str(path), "s", 0), options)
        assert outcome.rejected and outcome.reason.startswith(reason), outcome.reason
    good = PlanItem(1, "u1", write_wav(tmp_path / "g.wav", fx.speech_like(1.0, seed=1)), "s", 0)
    assert not encode_utterance(good, options).rejected

    def broken(*args, **kwargs):
        raise TypeError("a bug in the encoder")
    monkeypatch.setattr(schema, "serialize_example", broken)
    with pytest.raises(TypeError, match="a bug in the encoder"):
        encode_utterance(good, options)


def test_embedding_and_score_files_are_replaced_atomically(tmp_path, monkeypatch):
    """A write that dies midway (full disk, kill) leaves the previous file, not half of it."""
    from tfspk.scoring import embeddings as embeddings_io
    from tfspk.scoring import score
    from tfspk.trials import Trial
    path = tmp_path / "e.npz"
    ids, vectors = np.array(["a/1", "b/2"]), np.eye(2, 3, dtype=np.float32)
    embeddings_io.save_embeddings(path, ids, vectors, np.array(["a", "b"]))
    good = path.read_bytes()

    def dying_savez(stream, **arrays):
        stream.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")
    with monkeypatch.context() as patched:
        patched.setattr(np, "savez", dying_savez)
        with pytest.raises(OSError, match="No space left"):
            embeddings_io.save_embeddings(path, ids, 2 * vectors)
    assert path.read_bytes() == good
    np.testing.assert_array_equal(embeddings_io.load_embeddings(path).embeddings, vectors)

    trials = [Trial(1, "a/1", "b/2"), Trial(0, "a/1", "c/3")]
    score.write_scores(tmp_path / "scores.txt", trials, [0.5, -0.25])
    before = (tmp_path / "scores.txt").read_text()

    def dying_scores():
        yield 0.75
        raise KeyboardInterrupt   # killed after the first line
    with pytest.raises(KeyboardInterrupt):
        score.write_scores(tmp_path / "scores.txt", trials, dying_scores())
    assert (tmp_path / "scores.txt").read_text() == before == "a/1 b/2 0.5\na/1 c/3 -0.25\n"
    assert sorted(os.listdir(tmp_path)) == ["e.npz", "scores.txt"]   # no temporary left


def test_build_error_is_a_value_error():
    assert issubclass(BuildError, ValueError) and issubclass(ShardSetError, ValueError)


# --------------------------------------- inference CLIs: embed, verify, enroll, identify
@pytest.fixture(scope="module")
def export_base(tmp_path_factory):
    import export_fixtures
    return export_fixtures.export_tiny_model(tmp_path_factory.mktemp("inference_model"))


def test_inference_clis_name_the_bad_flag_or_file(export_base, tmp_path, capsys):
    from tfspk import embed, enroll, identify, verify
    clip = write_wav(tmp_path / "a.wav", fx.speech_like(1.0, seed=1))
    missing = tmp_path / "nope"
    cases = [
        (verify, [f"--model={missing}", clip, clip], f"--model={missing}: {missing}: no such "
                                                     "export directory"),
        (verify, [f"--model={tmp_path}", clip, clip], f"--model={tmp_path}: {tmp_path}: "
                                                      "neither a SavedModel"),
        (verify, [f"--model={export_base}", f"--calibration={missing}.json", clip, clip],
         f"--calibration={missing}.json: "),
        (verify, [f"--model={export_base}", clip, str(tmp_path / "gone.wav")], "gone.wav"),
        (identify, [f"--model={export_base}", f"--db={missing}", clip],
         f"{missing}: not a speaker database (no db.json)"),
        (enroll, [f"--model={export_base}", f"--db={tmp_path / 'db'}", "--speaker= x", clip],
         "speaker name must be non-empty without surrounding spaces"),
        (embed, [f"--model={export_base}", f"--output={tmp_path / 'e.npz'}",
                 str(tmp_path / "none-*.wav")], "none-*.wav"),
    ]
    for module, args, named in cases:
        status, text = run_cli(module, args, capsys)
        assert status == 2 and named in text, (module.__name__, args, text)
        assert "Traceback" not in text
    calibration = tmp_path / "bad.json"
    calibration.write_text("{broken")
    status, text = run_cli(verify, [f"--model={export_base}", f"--calibration={calibration}",
                                    clip, clip], capsys)
    assert status == 2 and f"--calibration={calibration}: " in text and "JSON" in text


def test_enroll_into_a_locked_db_is_refused_naming_the_holder(export_base, tmp_path, capsys):
    from tfspk import enroll, speaker_db
    clip = write_wav(tmp_path / "a.wav", fx.speech_like(1.0, seed=1))
    db = tmp_path / "db"
    script = ("import sys, time\nfrom tfspk import speaker_db\n"
              "with speaker_db.SpeakerDB(sys.argv[1]).lock():\n"
              " print('LOCKED', flush=True)\n time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        status, text = run_cli(enroll, [f"--model={export_base}", f"--db={db}",
                                        "--speaker=alice", "--lock_timeout=0.2", clip], capsys)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert status == 2 and f"{db}: locked by pid {holder.pid}" in text
    assert not speaker_db.SpeakerDB(db).exists()


def test_missing_optional_packages_give_an_install_hint(export_base, tmp_path, capsys,
                                                        monkeypatch):
    from tfspk import embed, extras
    clip = write_wav(tmp_path / "a.wav", fx.speech_like(1.0, seed=1))
    monkeypatch.setitem(sys.modules, "kaldiio", None)  # `import kaldiio` now fails
    status, text = run_cli(embed, [f"--model={export_base}",
                                   f"--output={tmp_path / 'e.ark'}", clip], capsys)
    assert status == 2 and "Traceback" not in text
    assert (f"--output={tmp_path / 'e.ark'} (Kaldi ark/scp) needs the optional package "
            "kaldiio, which is not installed: pip install 'tfspk[kaldi]'") in text
    assert not (tmp_path / "e.ark").exists()
    with pytest.raises(extras.MissingExtraError, match=r"pip install 'tfspk\[onnx\]'"):
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        extras.require("onnxruntime", purpose="--format=onnx")


def test_every_extra_named_by_tfspk_extras_exists_in_setup_py():
    import ast
    from tfspk import extras
    tree = ast.parse(open(os.path.join(REPO, "setup.py")).read())
    table = next(k.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                 for k in node.keywords if k.arg == "extras_require")
    declared = {key.value: [item.value for item in value.elts
                            if isinstance(item, ast.Constant)]  # not the f-strings
                for key, value in zip(table.keys, table.values)}
    for module, (distribution, extra) in extras.KNOWN.items():
        assert extra in declared, (module, extra)
        packages = [p.split("=")[0].split(">")[0].split("[")[0] for p in declared[extra]]
        assert distribution in packages, (module, distribution, declared[extra])


@pytest.mark.parametrize("module,extra,call", [
    ("onnxruntime", "onnx", "onnx_session"),
    ("ai_edge_litert", "tflite", "tflite_interpreter"),
    ("tf2onnx", "onnx", "onnx_conversion"),
])
def test_converted_models_without_their_extra_say_how_to_install_it(monkeypatch, module,
                                                                    extra, call):
    from tfspk import convert, extras
    monkeypatch.setitem(sys.modules, module, None)
    if module == "ai_edge_litert":
        monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    metadata = {"format": "onnx" if extra == "onnx" else "tflite",
                "geometry": {"min_samples": 400, "sample_rate": 16000},
                "inputs": {"waveform": {"shape": [None, None]}}}
    with pytest.raises(extras.MissingExtraError, match=rf"pip install 'tfspk\[{extra}\]'"):
        if call == "onnx_conversion":
            convert.to_onnx_model(None)
        else:
            convert.ConvertedModel("model.bin", metadata)


def _flagfiles(tmp_path):
    """A binary file passed as a flag file, and a text flag file that names it."""
    binary = tmp_path / "model.flac"
    binary.write_bytes(b"fLaC\x00\x00\x00\x22\x12\x00\xf0\xff" * 8)
    nested = tmp_path / "outer.flags"
    nested.write_text(f"--json\n--flagfile={binary}\n")
    return binary, nested


def test_a_binary_flagfile_is_a_flag_error_naming_it(tmp_path):
    """End to end in a fresh interpreter; every other CLI: `test_every_cli_refuses_...`."""
    binary, nested = _flagfiles(tmp_path)
    for flagfile in (binary, nested):
        result = run_subprocess(["tfspk.train", f"--flagfile={flagfile}"], timeout=120)
        assert result.returncode == 1, result.stderr[-2000:]
        assert f"--flagfile={binary}: not a text file of flags" in result.stderr
        assert "Traceback" not in result.stderr


def test_audio_errors_say_what_is_wrong(tmp_path):
    from tfspk.audio import AudioError, load_audio
    folder = tmp_path / "take1.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="take1.wav: is a directory, not an audio file"):
        load_audio(folder)
    stereo = write_wav(tmp_path / "s.wav", np.stack([fx.speech_like(0.5, 1)] * 2, axis=1))
    with pytest.raises(AudioError) as info:
        load_audio(stereo)
    assert "has 2 channels, expected mono" in str(info.value)
    assert "tfrecords_tools.build --downmix" in str(info.value)
    assert "pass downmix=True" not in str(info.value)  # no flag of that name in any CLI


@pytest.mark.parametrize("case", ["plda_backend", "cosine_enroll"])
def test_score_with_embeddings_of_another_dimension_names_both(tmp_path, capsys, case):
    from eval import embeddings as embeddings_io
    from eval import score
    from tfspk.backend import pipeline
    rng = np.random.default_rng(0)
    ids = np.array([f"s{i // 2}/u{i}" for i in range(8)])
    speakers = np.array([f"s{i // 2}" for i in range(8)])
    embeddings_io.save_embeddings(str(tmp_path / "test.npz"), ids,
                                  rng.standard_normal((8, 12)).astype(np.float32), speakers)
    (tmp_path / "trials.txt").write_text("1 s0/u0 s0/u1\n0 s0/u0 s1/u2\n")
    args = [f"--trials={tmp_path / 'trials.txt'}", f"--embeddings={tmp_path / 'test.npz'}",
            f"--output_dir={tmp_path / 'out'}"]
    if case == "plda_backend":
        pipeline.make_plda_backend(lda_dim=4).fit(rng.standard_normal((40, 8)),
                                                  np.repeat(np.arange(10), 4)).save(
            tmp_path / "backend")
        args += ["--backend=plda", f"--backend_dir={tmp_path / 'backend'}"]
        named = (f"embeddings of dimension 12, but the backend {tmp_path / 'backend'}"
                 f"/backend.json was trained on dimension 8")
    else:
        embeddings_io.save_embeddings(str(tmp_path / "enroll.npz"), ids,
                                      rng.standard_normal((8, 6)).astype(np.float32),
                                      speakers)
        args += [f"--enroll_embeddings={tmp_path / 'enroll.npz'}"]
        named = "enroll.npz"
    status, text = run_cli(score, args, capsys)
    assert status in (1, 2) and named in text, text
    assert "broadcast" not in text and "Traceback" not in text


@pytest.mark.parametrize("waveform_shape,lengths_shape", [
    ((16000,), (1,)), ((1, 16000, 2), (1,)), ((1, 16000), ()), ((1, 16000), (1, 1)),
])
def test_savedmodel_refuses_inputs_of_the_wrong_rank_naming_the_shapes(
        saved_model, waveform_shape, lengths_shape):
    import tensorflow as tf
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    waveform = tf.constant(0.1 * np.ones(waveform_shape, np.float32))
    lengths = tf.constant(np.full(lengths_shape, 16000, np.int32))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Shape of tensor (waveform|lengths) \[[0-9, ]*\] is not "
                             r"compatible with expected shape"):
        serve(waveform=waveform, lengths=lengths)


def test_beam_build_without_apache_beam_says_how_to_install_it(tmp_path, monkeypatch):
    from tfspk import extras
    from tfspk.shards.beam import build_split_beam
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    with pytest.raises(extras.MissingExtraError, match=r"the Beam build .*needs the optional "
                                                       r"package apache-beam.*tfspk\[beam\]"):
        build_split_beam([], BuildConfig(str(tmp_path / "o"), "train", 1))
    assert not (tmp_path / "o").exists()


def test_extract_names_a_truncated_shard(built, saved_model, tmp_path, capsys):
    from eval import extract
    out = copy_data(built, tmp_path)
    shard = os.path.join(out, "train-00000-of-00002.tfrecord")
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[:-7])
    status, text = run_cli(extract, [f"--saved_model={saved_model}", "--input_format=tfrecords",
                                     f"--input={os.path.join(out, 'train-*.tfrecord')}",
                                     f"--output={tmp_path / 'e.npz'}"], capsys)
    assert status == 2 and "train-00000-of-00002.tfrecord" in text, text
    assert "Traceback" not in text and not (tmp_path / "e.npz").exists()


@pytest.mark.parametrize("case", ["verify", "identify", "enroll", "embed", "score",
                                  "calibrate"])
def test_inference_and_scoring_user_errors_exit_2_without_a_traceback(tmp_path, case):
    missing = str(tmp_path / "nope")
    clip = write_wav(tmp_path / "a.wav", fx.speech_like(1.0, seed=1))
    args, named = {
        "verify": (["tfspk.verify", f"--model={missing}", clip, clip], f"--model={missing}"),
        "identify": (["tfspk.identify", f"--model={missing}", f"--db={missing}", clip],
                     f"--model={missing}"),
        "enroll": (["tfspk.enroll", f"--model={missing}", f"--db={tmp_path / 'db'}",
                    "--speaker=a", clip], f"--model={missing}"),
        "embed": (["tfspk.embed", f"--model={missing}", f"--output={tmp_path / 'e.npz'}",
                   clip], f"--model={missing}"),
        "score": (["eval.score", f"--trials={missing}.txt", f"--embeddings={missing}.npz",
                   f"--output_dir={tmp_path / 'out'}"], "nope"),
        "calibrate": (["eval.calibrate", f"--scores={missing}.txt", f"--trials={missing}.txt",
                       f"--output={tmp_path / 'c.json'}"], "nope.txt"),
    }[case]
    result = run_subprocess(args, timeout=180)
    assert result.returncode == 2, result.stderr[-2000:]
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "db").exists() and not (tmp_path / "c.json").exists()


# ------------------------------------------ every CLI: flag files; probes: options
#: Every command-line program of the product (`python -m <name>`).
CLI_PROGRAMS = (
    "tfspk.train", "tfspk.export", "tfspk.convert", "tfspk.embed", "tfspk.verify",
    "tfspk.enroll", "tfspk.identify", "tfrecords_tools.build", "tfrecords_tools.beam_build",
    "tfrecords_tools.inspect", "tfrecords_tools.verify", "tfrecords_tools.synth",
    "eval.extract", "eval.score", "eval.report", "eval.calibrate", "eval.baseline",
    "eval.ivector", "tfspk.corpora.check", "probes.broad_class", "probes.phone_recognition", "probes.tsne",
    "probes.critical_phones", "probes.similarity_matrix", "probes.over_training",
    "probes.run", "tfrecords_tools.sessions", "tfspk.demo")

#: The absl benchmark scripts (`python benchmarks/<name>.py`), found rather than listed so
#: a new one is checked too. They define flags at import, so each is run only in its child.
BENCHMARK_SCRIPTS = tuple(sorted(
    os.path.join("benchmarks", name) for name in os.listdir(os.path.join(REPO, "benchmarks"))
    if name.endswith(".py") and "app.run(" in open(os.path.join(REPO, "benchmarks", name),
                                                  encoding="utf-8").read()))

# Runs each program's real `__main__` block in a child forked from one interpreter that
# imported them all (an interpreter per program would import TensorFlow each time, about
# 25 s apiece on the shared test machine); the child's stderr and exit status are the
# program's own.
FORKED_MAINS = textwrap.dedent("""
    import json, os, runpy, sys, traceback
    flagfiles, programs = sys.argv[1].split(","), sys.argv[2:]
    for program in programs:
        if not program.endswith(".py"):
            __import__(program)    # importing defines no flags (define_flags(flag_values))
    results = {}
    for program in programs:
        for flagfile in flagfiles:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                os.dup2(write, 2)
                sys.argv = [program, "--flagfile=" + flagfile]
                try:
                    if program.endswith(".py"):  # a script, run as `python <script>` does
                        sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
                        runpy.run_path(program, run_name="__main__")
                    else:
                        runpy.run_module(program, run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as exit_:
                    code = exit_.code if isinstance(exit_.code, int) else 1
                except BaseException:
                    traceback.print_exc()
                    code = 99
                sys.stderr.flush()
                os._exit(code)
            os.close(write)
            with os.fdopen(read) as stream:
                stderr = stream.read()
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            results[program + " " + flagfile] = [code, stderr]
    print("RESULT " + json.dumps(results))
""")


def test_every_cli_refuses_a_binary_flagfile_in_one_line(tmp_path):
    binary, nested = _flagfiles(tmp_path)
    programs = CLI_PROGRAMS + BENCHMARK_SCRIPTS
    assert len(BENCHMARK_SCRIPTS) >= 17, BENCHMARK_SCRIPTS
    result = subprocess.run([sys.executable, "-c", FORKED_MAINS, f"{binary},{nested}",
                             *programs], cwd=REPO, env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT "):])
    assert len(results) == 2 * len(programs)
    for run, (code, stderr) in results.items():
        assert code == 1, (run, stderr[-2000:])
        assert f"--flagfile={binary}: not a text file of flags" in stderr, (run, stderr)
        assert "Traceback" not in stderr, (run, stderr)


def test_beam_build_reports_a_bad_known_flag_in_one_line(tmp_path):
    """Its parser passes unknown flags to Beam; a bad value of a known one is still a flag
    error, not a traceback from inside absl."""
    result = run_subprocess(["tfrecords_tools.beam_build", "--num_shards=lots",
                             "--input_format=manifest", f"--input={tmp_path / 'm.tsv'}",
                             f"--output_dir={tmp_path / 'o'}"], timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "--num_shards" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def probe_inputs(tmp_path_factory):
    """The probes' tone-coded TIMIT-layout corpus and a tiny training run (2 checkpoints)."""
    import probes_fixtures as pf
    root = tmp_path_factory.mktemp("probe_inputs")
    timit = pf.write_tone_timit(str(root / "timit"))
    run = pf.write_tiny_run(str(root / "run"), steps=(0, 5))
    return {"timit": timit, "run": run}


@pytest.fixture
def count_embeds(monkeypatch):
    """How many waveforms the probes embedded: 0 means a refusal came before any work."""
    from tfspk.probes.frames import FrameEmbedder
    calls = []
    original = FrameEmbedder.embed

    def counted(self, waveform):
        calls.append(1)
        return original(self, waveform)
    monkeypatch.setattr(FrameEmbedder, "embed", counted)
    return calls


@pytest.mark.parametrize("program,extra,named", [
    ("run", ["--quick", "--per_layers=fc2,fc9"],
     "--per_layers=fc2,fc9: unknown layers ['fc9']"),
    ("run", ["--quick", "--critical_layer=conv9"], "--critical_layer=conv9: unknown layers"),
    ("run", ["--quick", "--critical_exclude=h#,pau,ep1"],
     "--critical_exclude=h#,pau,ep1: ['ep1'] not TIMIT-61 phone labels"),
    ("run", ["--quick", "--critical_min_utterances=11"],
     "--critical_min_utterances=11: no speaker has 11 utterances (the most any has is 10)"),
    ("run", ["--quick", "--tsne_max_segments=0"], "--tsne_max_segments=0: must be >= 1"),
    ("phone_recognition", ["--per_units=0"], "--per_units=0: must be >= 1"),
    ("phone_recognition", ["--per_learning_rate=-0.1"], "--per_learning_rate=-0.1: must be > 0"),
    ("critical_phones", ["--critical_layer=nope"], "--critical_layer=nope: unknown layers"),
    ("similarity_matrix", ["--same_speaker_pair=NOPE0_SA1,FEEE0_SA1"],
     "--same_speaker_pair=NOPE0_SA1,FEEE0_SA1: utterance 'NOPE0_SA1' is not in the split"),
    ("broad_class", ["--layers=conv1,fc7"], "--layers=conv1,fc7: unknown layers ['fc7']"),
    ("over_training", ["--per_layers=fc9"], "--per_layers=fc9: unknown layers ['fc9']"),
], ids=["run_per_layers", "run_critical_layer", "run_critical_exclude",
        "run_min_utterances", "run_tsne_segments", "per_units", "per_learning_rate",
        "critical_layer", "similarity_pair", "layers", "over_training_per_layers"])
def test_a_probe_refuses_a_bad_option_before_any_work(probe_inputs, tmp_path, capsys,
                                                      count_embeds, program, extra, named):
    import importlib
    module = importlib.import_module(f"probes.{program}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("- an earlier run's report\n")
    status, text = run_cli(module, [f"--model_dir={probe_inputs['run']}",
                                    f"--timit_dir={probe_inputs['timit']}",
                                    f"--output_dir={out}", *extra], capsys)
    assert status == 2 and f"error: {named}" in text, text
    assert "Traceback" not in text
    assert count_embeds == []
    assert (out / "report.md").read_text() == "- an earlier run's report\n"  # nothing lost


def test_over_training_refuses_a_run_without_checkpoints_before_any_work(
        probe_inputs, tmp_path, capsys, count_embeds):
    from probes import over_training
    empty = tmp_path / "run"
    shutil.copytree(probe_inputs["run"], empty)
    shutil.rmtree(empty / "checkpoints")
    status, text = run_cli(over_training, [f"--model_dir={empty}",
                                           f"--timit_dir={probe_inputs['timit']}",
                                           f"--output_dir={tmp_path / 'out'}"], capsys)
    assert status == 2 and f"--model_dir={empty}: no checkpoints in {empty}" in text, text
    assert count_embeds == [] and not (tmp_path / "out").exists()


def _timit_copy(probe_inputs, tmp_path):
    root = tmp_path / "timit"
    shutil.copytree(probe_inputs["timit"], root)
    return root


@pytest.mark.parametrize("case", ["phn_past_end", "unreadable_wav"])
def test_a_probe_refuses_a_bad_corpus_file_before_any_work(probe_inputs, tmp_path, capsys,
                                                           count_embeds, case):
    from probes import broad_class
    root = _timit_copy(probe_inputs, tmp_path)
    folder = root / "TEST" / "DR1" / "MFFF0"
    if case == "phn_past_end":
        # The last phone runs 0.1 s past the audio: it used to be clipped to the last
        # frames without a word, changing every probe's numbers.
        phn = folder / "SX3.PHN"
        lines = phn.read_text().splitlines()
        start, end, label = lines[-1].split()
        lines[-1] = f"{start} {int(end) + 1600} {label}"
        phn.write_text("\n".join(lines) + "\n")
        named = (f"{phn}:{len(lines)}: phone {label!r} ends at sample {int(end) + 1600}, "
                 f"past the end of the audio ({end} samples in {folder / 'SX3.WAV'})")
    else:
        (folder / "SX3.WAV").write_bytes(b"NIST_1A\n   1024\nnot a header" * 10)
        named = f"{folder / 'SX3.WAV'}: cannot read the audio header"
    status, text = run_cli(broad_class, [f"--model_dir={probe_inputs['run']}",
                                         f"--timit_dir={root}",
                                         f"--output_dir={tmp_path / 'out'}"], capsys)
    assert status == 2 and named in text, text
    assert "Traceback" not in text and count_embeds == []
