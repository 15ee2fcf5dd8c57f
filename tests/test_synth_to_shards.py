"""The built-in synthetic corpora through the real shard builder, read back bit-exact."""
import numpy as np
import soundfile
import tensorflow as tf

from tfspk import schema
from tfspk.corpora.timit import read_timit
from tfspk.shards.build import BuildConfig, build_from_corpus
from tfspk.synth import corpus


def _read_shards(pattern):
    examples = {}
    for path in sorted(tf.io.gfile.glob(pattern)):
        for record in tf.data.TFRecordDataset(path):
            example = schema.parse_example_numpy(record.numpy())
            examples[example["utt_id"]] = example
    return examples


def test_synthetic_timit_round_trips_audio_and_phones(tmp_path):
    root = tmp_path / "timit"
    corpus.generate_timit(str(root), num_speakers=3, utts_per_speaker=3, seed=5)
    utterances = read_timit(str(root))
    result = build_from_corpus("timit", str(root),
                               BuildConfig(str(tmp_path / "data"), "all", num_shards=2))
    assert result.metadata["num_examples"] == len(utterances) == 9
    examples = _read_shards(str(tmp_path / "data" / "all-*.tfrecord"))
    for utt in utterances:
        example = examples[utt.utt_id]
        pcm, rate = soundfile.read(utt.path, dtype="int16")
        assert rate == example["sample_rate"] == 16000
        np.testing.assert_array_equal(example["pcm16"], pcm)
        assert example["phones"] == [(p.start, p.end, p.label) for p in utt.phones]
        assert example["speaker"] == utt.speaker


def test_synthetic_voxceleb_subsets_are_disjoint_and_exact(voxceleb_shards):
    train = _read_shards(voxceleb_shards["train"])
    test = _read_shards(voxceleb_shards["test"])
    assert not {e["speaker"] for e in train.values()} & {e["speaker"] for e in test.values()}
    corpus_root = voxceleb_shards["corpus"]
    for utt_id, example in list(test.items())[:10]:
        pcm, _ = soundfile.read(f"{corpus_root}/wav/{utt_id}.wav", dtype="int16")
        np.testing.assert_array_equal(example["pcm16"], pcm)
