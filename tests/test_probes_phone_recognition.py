"""The framewise phone recognizer: frame labels from the .PHN alignment through a layer's
geometry, its loss and decoding by hand, and an oracle feature recognised almost perfectly."""
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from tfspk import phones
from tfspk.corpora.records import PhoneSegment, Utterance

from probes import data, phone_recognition as pr
from probes.edit_distance import EditCounts, edit_distance, fold_phones
from probes.frames import FrameEmbedder, make_geometry

import probes_fixtures as pf

#: `dense` is MFCC-like (frame j centred on sample 160 j + 200); `strided` is conv2-like
#: (centred on MFCC frame 5 + 2 j, i.e. on sample 1000 + 320 j).
GEOMETRY = make_geometry({"dense": (0, 1), "strided": (5, 2)})
ORACLE_RECOGNIZER = pr.RecognizerConfig(units=32, num_layers=1, epochs=12, batch_size=32,
                                        learning_rate=1e-2, chunk_frames=32)


def _embedder():
    return FrameEmbedder(lambda waveform, lengths: {}, GEOMETRY, name="geometry-only")


def _utterance(segments):
    return Utterance("SPK0_SX1", "/nonexistent/SX1.WAV", "SPK0",
                     phones=tuple(PhoneSegment(s, e, label) for s, e, label in segments))


def _ids(labels):
    return [pr.UNLABELLED if label is None else phones.TIMIT39.index(label) for label in labels]


def test_strided_frame_labels_by_hand():
    # Centres 1000, 1320, ..., 3880. dx (100 samples) holds no centre and claims its
    # nearest frame (midpoint 1450 -> frame 1) from h#; q's frame and the frames after
    # the alignment's end are unlabelled; h# folds to sil and ix to ih.
    utt = _utterance([(0, 1400, "h#"), (1400, 1500, "dx"), (1500, 2000, "t"),
                      (2000, 2300, "q"), (2300, 3300, "ix")])
    labels = pr.frame_phone_labels(_embedder(), "strided", utt, num_frames=10)
    assert labels.tolist() == _ids(["sil", "dx", "t", "t", None, "ih", "ih", "ih", None,
                                    None])


def test_dense_frame_labels_follow_the_phone_holding_each_frame_centre():
    rng = np.random.default_rng(3)
    labels61 = [label for label in phones.TIMIT61 if label != "q"]
    bounds = np.cumsum(rng.integers(200, 2000, size=25))   # every phone > one frame shift
    segments = [(int(s), int(e), labels61[rng.integers(len(labels61))])
                for s, e in zip(np.r_[0, bounds[:-1]], bounds)]
    num_frames = 1 + (int(bounds[-1]) - 400) // 160
    got = pr.frame_phone_labels(_embedder(), "dense", _utterance(segments), num_frames)
    centres = 160 * np.arange(num_frames) + 200
    expected = [next(fold_phones([label]) for s, e, label in segments if s <= c < e)
                for c in centres]
    assert got.tolist() == _ids([label[0] for label in expected])


def test_merge_and_decode_by_hand():
    assert pr.merge_repeats([3, 3, 1, 1, 1, 3, 2, 2]) == [3, 1, 3, 2]
    assert pr.merge_repeats([]) == []
    # CTC: runs merged first, so a blank between two 5s keeps both.
    assert pr.greedy_ctc_decode([0, 5, 5, 0, 5, 7, 7, 0]) == [5, 5, 7]
    sil, aa, t = (phones.TIMIT39.index(p) for p in ("sil", "aa", "t"))
    assert pr.decode_frames([sil, sil, aa, aa, aa, t, sil], "framewise") == \
        ["sil", "aa", "t", "sil"]
    # The same ids mean other phones for CTC, whose symbol 0 is the blank.
    assert pr.decode_frames([0, 1, 1, 0, 2], "ctc") == [pr.SYMBOLS[1], pr.SYMBOLS[2]]
    with pytest.raises(ValueError, match="unknown loss 'hmm'"):
        pr.RecognizerConfig(loss="hmm")


def test_framewise_loss_is_mean_cross_entropy_over_labelled_frames():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 5)).astype(np.float32)
    frame_labels = np.array([[1, 4, pr.UNLABELLED, 0], [2, pr.UNLABELLED, pr.UNLABELLED,
                                                        pr.UNLABELLED]], np.int32)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = [-log_probs[b, t, frame_labels[b, t]] for b, t in zip(*np.nonzero(
        frame_labels != pr.UNLABELLED))]
    got = pr.framewise_loss(tf.constant(logits), (None, None, None, tf.constant(frame_labels)))
    assert float(got) == pytest.approx(np.mean(picked), rel=1e-5)


def test_training_pieces_cover_each_labelled_frame_once():
    frames = np.arange(70, dtype=np.float16)[:, None]
    labels = np.r_[np.zeros(60, np.int32), np.full(10, pr.UNLABELLED, np.int32)]
    example = pr.Example(frames, [1], ["b"], labels)
    pieces = pr.training_pieces([example], 16, np.random.default_rng(1))
    covered = np.concatenate([piece.frames[:, 0] for piece in pieces]).astype(int)
    assert all(1 <= len(piece.frames) <= 16 for piece in pieces)
    assert all((piece.frame_labels != pr.UNLABELLED).any() for piece in pieces)
    assert covered.tolist() == list(range(len(covered)))  # in order, no overlap or gap
    assert 60 <= len(covered) < 60 + 16   # only wholly unlabelled pieces were dropped
    assert pr.training_pieces([example], 0, np.random.default_rng(1)) == [example]


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory):
    root = pf.write_tone_timit(str(tmp_path_factory.mktemp("timit")))
    return data.load_split(root, "TRAIN"), data.load_split(root, "TEST")


def test_oracle_one_hot_phones_give_near_zero_per(tone_corpus):
    train, test = tone_corpus
    embedder = pf.oracle_embedder()
    result = pr.phone_error_rates(embedder, train, test, ["phone_onehot", "noise"],
                                  ORACLE_RECOGNIZER, progress=False)
    # A framewise transcription cannot repeat a phone (tcl then pau are sil, sil), so the
    # best achievable PER is that of the true frame labels with runs merged.
    floor = EditCounts()
    for example in pr.collect_examples(embedder, test, "phone_onehot", progress=False):
        labelled = example.frame_labels[example.frame_labels != pr.UNLABELLED]
        floor += edit_distance(example.reference, pr.decode_frames(labelled, "framewise"))
    oracle = result["phone_onehot"]
    assert oracle.counts.reference_length == sum(len(utt.phones) for utt in test)
    assert oracle.frame_accuracy > 0.95
    # Run merging only ever deletes; beyond it the oracle makes (almost) no error.
    assert floor.substitutions == floor.insertions == 0 and floor.error_rate < 0.2
    assert oracle.per - floor.error_rate < 0.02
    assert result["noise"].per > 0.6 > oracle.per + 0.4
    assert oracle.losses[-1] < 0.3 * oracle.losses[0]


def test_per_flags_build_the_config():
    pr.define_flags()
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["phone_recognition", "--per_loss=ctc", "--per_chunk_frames=0",
                 "--per_units=7"])
    try:
        config = pr.config_from_flags()
    finally:
        flags.FLAGS.unparse_flags()
    assert (config.loss, config.chunk_frames, config.units) == ("ctc", 0, 7)
    assert pr.RecognizerConfig().loss == "framewise"
