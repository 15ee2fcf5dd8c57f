"""tfrecords_tools.sessions planning: segment boundaries per split, renders, trials."""
import pytest

from tfrecords_tools import sessions as tool
from tfspk.corpora.records import Utterance

RATE = 16000


def _utterances():
    return [Utterance("1-1-0", "/a/1-1-0.flac", "1"), Utterance("2-1-0", "/a/2-1-0.flac", "2"),
            Utterance("3-1-0", "/a/3-1-0.flac", "3")]


def test_train_speakers_get_their_own_segment_length_and_renders():
    lengths = [13 * RATE, 10 * RATE, 7 * RATE]  # speaker 1 trains, 2 and 3 test
    planned = tool.plan_segments(_utterances(), lengths, {"1"}, segment_samples=3 * RATE,
                                 max_segments=5, train_renders=2, seed=0,
                                 train_segment_samples=6 * RATE)
    train = [s for s in planned if s.split == "train"]
    # floor(13 / 6) = 2 segments of 6 s, each in 2 sessions.
    assert [(s.start, s.end, s.render) for s in train] == [
        (0, 6 * RATE, 0), (0, 6 * RATE, 1), (6 * RATE, 12 * RATE, 0),
        (6 * RATE, 12 * RATE, 1)]
    assert len({s.channel.session_id for s in train}) == 4
    test = [s for s in planned if s.split == "test"]
    assert [(s.speaker, s.start // RATE, s.end // RATE) for s in test] == [
        ("2", 0, 3), ("2", 3, 6), ("2", 6, 9), ("3", 0, 3), ("3", 3, 6)]
    # Default: the same length for both splits.
    same = tool.plan_segments(_utterances(), lengths, {"1"}, segment_samples=3 * RATE,
                              max_segments=5, train_renders=1, seed=0)
    assert [s.end - s.start for s in same] == [3 * RATE] * len(same)
    assert sum(s.split == "train" for s in same) == 4


def test_trials_pair_only_different_sessions_of_different_audio():
    planned = tool.plan_segments(_utterances(), [13 * RATE, 10 * RATE, 7 * RATE], set(),
                                 segment_samples=3 * RATE, max_segments=5, train_renders=1,
                                 seed=0)
    trials = tool.cross_session_trials(planned)
    n = len(planned)  # 4 + 3 + 2 segments, all test
    assert len(trials) == n * (n - 1) // 2
    assert sum(t.label for t in trials) == 4 * 3 // 2 + 3 * 2 // 2 + 1


def test_negative_train_segment_seconds_is_refused(tmp_path):
    with pytest.raises(ValueError, match="train_segment_seconds=-1"):
        tool.build_session_corpus(_utterances(), tmp_path, test_speakers=1,
                                  train_segment_seconds=-1)
