"""Local build from every input format, bit-exact read-back, rejects and labels."""
import os

import numpy as np
import pytest

import shards_fixtures as fx
from tfspk.corpora.records import Utterance
from tfspk.shards import inspect as shard_inspect
from tfspk.shards import metadata as meta
from tfspk.shards.build import BuildConfig, BuildError, build_from_corpus, build_split
from tfspk.shards.encode import EncodeOptions, to_pcm16
from tfspk.shards.verify import verify_split


def _assert_bit_exact(data_dir, split, expected):
    examples = fx.read_split(data_dir, split)
    assert sorted(examples) == sorted(expected)
    for utt_id, pcm in expected.items():
        np.testing.assert_array_equal(examples[utt_id]["pcm16"], pcm, err_msg=utt_id)
        assert examples[utt_id]["num_samples"] == len(pcm)
        assert examples[utt_id]["sample_rate"] == 16000
    return examples


def test_to_pcm16_inverts_soundfile_scaling():
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], np.int16)
    np.testing.assert_array_equal(to_pcm16(pcm.astype(np.float32) / 32768), pcm)
    np.testing.assert_array_equal(to_pcm16(np.array([-2.0, 2.0])), [-32768, 32767])


def test_voxceleb_build_is_bit_exact_balanced_and_described(tmp_path):
    expected = fx.voxceleb_tree(str(tmp_path / "vox"), speakers=3, per_speaker=2)
    out = str(tmp_path / "out")
    config = BuildConfig(out, "train", num_shards=2, compression="gzip",
                         command=["build", "--x"], flags={"num_shards": 2})
    result = build_from_corpus("voxceleb", str(tmp_path / "vox"), config)
    examples = _assert_bit_exact(out, "train", expected)

    m = result.metadata
    assert (m["num_examples"], m["num_rejected"], m["num_inputs"]) == (6, 0, 6)
    total = sum(len(p) for p in expected.values()) / 16000
    assert m["total_seconds"] == pytest.approx(total)
    assert m["total_hours"] == pytest.approx(total / 3600)
    assert m["command"] == ["build", "--x"] and m["flags"] == {"num_shards": 2}
    assert [s["shard"] for s in m["shards"]] == ["train-00000-of-00002.tfrecord.gz",
                                                 "train-00001-of-00002.tfrecord.gz"]
    seconds = [s["seconds"] for s in m["shards"]]
    longest = max(len(p) for p in expected.values()) / 16000
    assert abs(seconds[0] - seconds[1]) <= longest + 1e-9
    assert sum(s["num_examples"] for s in m["shards"]) == 6
    # Labels follow speakers.tsv (sorted speaker ids).
    labels = meta.read_speakers_tsv(os.path.join(out, "train.speakers.tsv"))
    assert labels == {"id10000": 0, "id10001": 1, "id10002": 2}
    assert all(e["label"] == labels[e["speaker"]] for e in examples.values())
    assert verify_split(out, "train").ok

    summary = shard_inspect.summarize_split(out, "train")
    assert (summary.num_speakers, summary.num_utterances) == (3, 6)
    assert summary.hours == pytest.approx(total / 3600)
    text = shard_inspect.format_summary(summary, num_bins=3)
    assert "3 speakers, 6 utterances" in text and text.count("#") > 0
    png = str(tmp_path / "d.png")
    shard_inspect.plot_histogram(summary, png)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_kaldi_segments_build_is_bit_exact(tmp_path):
    expected = fx.kaldi_dir(str(tmp_path))
    out = str(tmp_path / "out")
    result = build_from_corpus("kaldi", str(tmp_path / "data" / "train"),
                               BuildConfig(out, "dev", num_shards=3, num_workers=1))
    _assert_bit_exact(out, "dev", expected)
    assert result.metadata["num_examples"] == 4


def test_timit_sphere_build_keeps_phones(tmp_path):
    expected, phones = fx.timit_tree(str(tmp_path / "timit"))
    out = str(tmp_path / "out")
    build_from_corpus("timit", str(tmp_path / "timit"), BuildConfig(out, "timit", 2))
    examples = _assert_bit_exact(out, "timit", expected)
    for utt_id, rows in phones.items():
        assert examples[utt_id]["phones"] == rows


def test_a_phn_past_the_end_of_its_audio_is_a_reject_naming_it(tmp_path):
    # The last phone of one .PHN runs 0.1 s past the audio: it used to be stored as is.
    expected, phones = fx.timit_tree(str(tmp_path / "timit"))
    folder = tmp_path / "timit" / "TRAIN" / "DR1" / "FCJF0"
    phn, wav = folder / "SX37.PHN", folder / "SX37.WAV"
    lines = phn.read_text().splitlines()
    start, end, label = lines[-1].split()
    lines[-1] = f"{start} {int(end) + 1600} {label}"
    phn.write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "out")
    result = build_from_corpus("timit", str(tmp_path / "timit"),
                               BuildConfig(out, "timit", 2, max_reject_fraction=0.5))
    assert result.metadata["num_rejected"] == 1
    rows = meta.read_rejects_tsv(os.path.join(out, "timit.rejects.tsv"))
    assert rows == [(str(wav), f"phones_past_end: {phn}:{len(lines)}: phone {label!r} ends "
                     f"at sample {int(end) + 1600}, past the end of the audio "
                     f"({len(expected['FCJF0_SX37'])} samples in {wav})", "FCJF0_SX37")]
    del expected["FCJF0_SX37"]
    examples = _assert_bit_exact(out, "timit", expected)
    for utt_id in expected:
        assert examples[utt_id]["phones"] == phones[utt_id]


def test_manifest_build_is_bit_exact_and_labels_stay_stable(tmp_path):
    path, expected = fx.manifest(str(tmp_path / "m"))
    out = str(tmp_path / "out")
    build_from_corpus("manifest", path, BuildConfig(out, "train", 2))
    _assert_bit_exact(out, "train", expected)
    train_labels = os.path.join(out, "train.speakers.tsv")

    # A second split with one known and one new speaker, labels from train's map.
    extra = fx.write_audio(str(tmp_path / "m" / "new.wav"), fx.speech_like(1.0, seed=3))
    utts = [Utterance("t0", extra, "spk1"), Utterance("t1", extra, "zed")]
    appended = build_split(utts, BuildConfig(out, "test", 1, speakers_tsv=train_labels))
    test = fx.read_split(out, "test")
    assert (test["t0"]["label"], test["t1"]["label"]) == (1, 2)
    assert appended.metadata["num_labels"] == 3
    rejected = build_split(utts, BuildConfig(out, "test2", 1, speakers_tsv=train_labels,
                                             unseen_speakers="reject"))
    assert rejected.metadata["num_rejected"] == 1
    rows = meta.read_rejects_tsv(os.path.join(out, "test2.rejects.tsv"))
    assert rows[0][0] == extra and rows[0][1].startswith("unknown_speaker") and rows[0][2] == "t1"


def test_rejects_every_kind_of_bad_audio_and_keeps_all_good(tmp_path):
    bad = fx.bad_audio(str(tmp_path / "bad"))
    assert len(bad) >= 10
    good = {f"good{i}": fx.speech_like(0.8 + 0.1 * i, seed=i) for i in range(4)}
    utts = []
    for i, (utt_id, pcm) in enumerate(good.items()):
        utts.append(Utterance(utt_id, fx.write_audio(str(tmp_path / f"{utt_id}.wav"), pcm),
                              f"s{i % 2}"))
    for kind, (path, _) in bad.items():
        utts.insert(len(utts) // 2, Utterance(kind, path, "s0"))
    out = str(tmp_path / "out")
    config = BuildConfig(out, "train", 3, encode=EncodeOptions(resample=False),
                         max_reject_fraction=0.9)
    result = build_split(utts, config)
    _assert_bit_exact(out, "train", good)
    rows = meta.read_rejects_tsv(os.path.join(out, "train.rejects.tsv"))
    reasons = {utt_id: (path, reason) for path, reason, utt_id in rows}
    assert sorted(reasons) == sorted(bad)
    for kind, (path, code) in bad.items():
        assert reasons[kind][0] == path
        assert reasons[kind][1].startswith(code + ":"), (kind, reasons[kind])
    # Invariant: inputs = examples written + rejects.
    m = result.metadata
    assert m["num_inputs"] == len(utts) == m["num_examples"] + m["num_rejected"]
    assert (m["num_examples"], m["num_rejected"]) == (4, len(bad))
    assert not result.too_many_rejects

    # With --downmix and resampling, the stereo and 8 kHz files are accepted.
    lenient = build_split(utts, BuildConfig(out, "lenient", 2, max_reject_fraction=0.9,
                                            encode=EncodeOptions(downmix=True)))
    assert lenient.metadata["num_examples"] == 6
    examples = fx.read_split(out, "lenient")
    assert examples["wrong_rate"]["num_samples"] == 16000  # 8000 samples at 8 kHz -> 1 s
    np.testing.assert_array_equal(examples["stereo"]["pcm16"], fx.speech_like(1.0, seed=999))


def test_rerun_with_other_inputs_needs_overwrite(tmp_path):
    path, _ = fx.manifest(str(tmp_path / "m"), count=2)
    out = str(tmp_path / "out")
    build_from_corpus("manifest", path, BuildConfig(out, "train", 1))
    with pytest.raises(BuildError, match="different inputs or settings.*--overwrite"):
        build_from_corpus("manifest", path, BuildConfig(out, "train", 1, compression="gzip"))
    redo = build_from_corpus("manifest", path, BuildConfig(out, "train", 2, overwrite=True))
    assert redo.shards_written == 2
    assert sorted(os.listdir(out)) == sorted(
        ["train-00000-of-00002.tfrecord", "train-00000-of-00002.tfrecord.json",
         "train-00001-of-00002.tfrecord", "train-00001-of-00002.tfrecord.json",
         "train.metadata.json", "train.plan.json", "train.rejects.tsv",
         "train.speakers.tsv"])
