"""Shard planning, atomic writes and the metadata/TSV formats (no TensorFlow needed)."""
import itertools
import os

import numpy as np
import pytest

from shards_fixtures import speech_like, write_audio
from tfspk.corpora.records import PhoneSegment, Utterance
from tfspk.shards import metadata as meta
from tfspk.shards import planning
from tfspk.shards.writer import atomic_write_text, remove_stale_tmp_files, sha256_file


def _loads(seconds, assignment, num_shards):
    loads = np.zeros(num_shards)
    np.add.at(loads, assignment, seconds)
    return loads


def test_assign_shards_matches_hand_worked_lpt_example():
    # LPT on [7, 6, 5, 4, 3, 2] over 2 shards: 7->0, 6->1, 5->1 (11), 4->0 (11),
    # 3->0 (14) ... ties go to the lower shard index.
    assignment = planning.assign_shards([7, 6, 5, 4, 3, 2], 2)
    assert assignment == [0, 1, 1, 0, 0, 1]
    np.testing.assert_allclose(_loads([7, 6, 5, 4, 3, 2], assignment, 2), [14, 13])


@pytest.mark.parametrize("seed", range(5))
def test_assign_shards_bounds_against_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(0.5, 10.0, size=9)
    num_shards = 3
    loads = _loads(seconds, planning.assign_shards(seconds, num_shards), num_shards)
    best = min(_loads(seconds, list(a), num_shards).max()
               for a in itertools.product(range(num_shards), repeat=len(seconds)))
    # Graham's bound for longest-first: makespan <= (4/3 - 1/(3m)) * optimum.
    assert loads.max() <= (4 / 3 - 1 / (3 * num_shards)) * best + 1e-9
    # The last item placed on the fullest shard went to the emptiest one at the time.
    assert loads.max() - loads.min() <= seconds.max() + 1e-9
    np.testing.assert_allclose(loads.sum(), seconds.sum())


def test_assign_shards_is_deterministic_and_handles_more_shards_than_items():
    assert planning.assign_shards([1.0, 1.0, 1.0], 5) == [0, 1, 2]
    assert planning.assign_shards([], 4) == []
    with pytest.raises(ValueError, match="num_shards"):
        planning.assign_shards([1.0], 0)


def test_make_plan_reads_headers_and_plans_rejects(tmp_path):
    path = write_audio(str(tmp_path / "a.wav"), speech_like(2.0, seed=1))
    utts = [
        Utterance("a", path, "s1", phones=(PhoneSegment(0, 100, "h#"),)),
        Utterance("seg", path, "s1", start=8000, end=24000),
        Utterance("a", path, "s1"),  # duplicate id
        Utterance("b", path, "ghost"),  # speaker not in the map
        Utterance("bad", str(tmp_path / "missing.wav"), "s1"),
    ]
    plan = planning.make_plan(utts, "train", 2, {"s1": 0}, {"sample_rate": 16000})
    by_position = {item.position: item for item in plan.items}
    assert by_position[0].seconds == pytest.approx(2.0)
    assert by_position[1].seconds == pytest.approx(1.0)
    assert by_position[0].phones == ((0, 100, "h#"),)
    assert by_position[2].reject.startswith("duplicate_utt_id")
    assert by_position[3].reject.startswith("unknown_speaker") and by_position[3].label == -1
    assert by_position[4].seconds == 0.0 and by_position[4].reject is None
    # Round trip through JSON keeps the plan, and so every shard digest.
    again = planning.ShardPlan.from_json(plan.to_json())
    assert again == plan
    assert again.shard_digest(1) == plan.shard_digest(1) != plan.shard_digest(0)


def test_header_seconds_plans_bad_audio_as_empty_but_stops_on_a_bug(tmp_path, monkeypatch):
    (tmp_path / "text.wav").write_bytes(b"not audio at all")
    (tmp_path / "dir.wav").mkdir()
    (tmp_path / "truncated.wav").write_bytes(b"RIFF$\x00\x00\x00WAVEfmt ")
    for name in ("text.wav", "dir.wav", "truncated.wav", "missing.wav", "bad\udcff.wav"):
        assert planning.header_seconds(str(tmp_path / name)) == 0.0, name
    # Anything else is a programming error: it propagates, naming the file.
    good = write_audio(str(tmp_path / "a.wav"), speech_like(0.5, seed=1))

    def broken_info(path):
        raise AttributeError("'NoneType' object has no attribute 'frames'")

    monkeypatch.setattr(planning.soundfile, "info", broken_info)
    with pytest.raises(AttributeError) as caught:
        planning.header_seconds(good)
    assert f"while reading the audio header of {good}" in caught.value.__notes__


def test_assign_labels_append_and_reject():
    assert meta.assign_labels(["b", "a", "b"]) == {"a": 0, "b": 1}
    existing = {"x": 0, "a": 5}
    assert meta.assign_labels(["a", "c", "b"], existing) == {"x": 0, "a": 5, "b": 6, "c": 7}
    assert meta.assign_labels(["a", "c"], existing, unseen="reject") == existing


def test_speakers_tsv_round_trip_and_errors(tmp_path):
    path = str(tmp_path / "speakers.tsv")
    meta.write_speakers_tsv(path, {"spk b": 1, "spkA": 0})
    assert open(path).read() == "0\tspkA\n1\tspk b\n"
    assert meta.read_speakers_tsv(path) == {"spkA": 0, "spk b": 1}
    with open(path, "a") as handle:
        handle.write("2\tspkA\n")
    with pytest.raises(meta.MetadataError, match=r"speakers.tsv: line 3: speaker 'spkA'"):
        meta.read_speakers_tsv(path)
    with open(path, "w") as handle:
        handle.write("zero spk\n")
    with pytest.raises(meta.MetadataError, match="line 1: expected 'label<TAB>speaker'"):
        meta.read_speakers_tsv(path)


def test_rejects_tsv_keeps_fields_on_one_line(tmp_path):
    path = str(tmp_path / "rejects.tsv")
    meta.write_rejects_tsv(path, [("a.wav", "unreadable: bad\tthing\nhere", "u1", 3)])
    assert meta.read_rejects_tsv(path) == [("a.wav", "unreadable: bad thing here", "u1")]


def test_atomic_write_leaves_only_the_final_file(tmp_path):
    path = str(tmp_path / "x.json")
    atomic_write_text(path, "hello")
    assert os.listdir(tmp_path) == ["x.json"] and open(path).read() == "hello"
    stale = tmp_path / "train-00000-of-00002.tfrecord.tmp-123"
    stale.write_bytes(b"partial")
    (tmp_path / "test-00000-of-00002.tfrecord.tmp-9").write_bytes(b"other split")
    assert remove_stale_tmp_files(str(tmp_path), "train") == [stale.name]
    assert sha256_file(path) == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")  # sha256("hello")


def test_split_files_are_kept_apart(tmp_path):
    for name in ["train-00000-of-00002.tfrecord", "train-00000-of-00002.tfrecord.json",
                 "train.metadata.json", "train.speakers.tsv", "train_small.metadata.json",
                 "train-x-00000-of-00001.tfrecord", "test.rejects.tsv"]:
        (tmp_path / name).write_text("")
    files = meta.SplitFiles(str(tmp_path), "train", 2, "gzip")
    assert files.shard_name(1) == "train-00001-of-00002.tfrecord.gz"
    assert [os.path.basename(p) for p in files.existing_files()] == [
        "train-00000-of-00002.tfrecord", "train-00000-of-00002.tfrecord.json",
        "train.metadata.json", "train.speakers.tsv"]
    assert meta.splits_in(str(tmp_path)) == ["train", "train_small"]


def _write_aac(path, num_samples, rate=16000, container_format=None, seed=0):
    """A real AAC file written with PyAV (m4a, or raw ADTS with container_format='adts');
    returns the float32 samples that went in."""
    import av

    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / rate
    samples = (0.3 * np.sin(2 * np.pi * rng.uniform(150, 600) * t)
               + 0.02 * rng.standard_normal(num_samples)).astype(np.float32)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        for offset in range(0, num_samples, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, offset:offset + 1024],
                                               format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, offset
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return samples


@pytest.mark.parametrize("num_samples", [16000 * 3 + 123, 16000 * 7 + 5000])
def test_m4a_header_seconds_within_10_ms_of_the_audio(tmp_path, num_samples):
    from tfspk import audio

    path = tmp_path / "00001.m4a"
    _write_aac(path, num_samples)
    seconds = planning.header_seconds(str(path))
    decoded, rate = audio.load_audio(str(path), 16000)
    assert rate == 16000
    # Against what went into the encoder (the truth). The decoder hands back the last
    # AAC frame whole (up to 1023 samples of encoder padding past the end the container
    # declares), so what the build stores is longer by less than one frame.
    assert abs(seconds - num_samples / 16000) <= 0.010
    assert 0 <= len(decoded) - round(seconds * 16000) < 1024
    # A span in samples, as Kaldi segments give it.
    assert planning.header_seconds(str(path), 8000, 24000) == pytest.approx(1.0)


def test_raw_adts_aac_is_measured_from_its_packets(tmp_path):
    from tfspk import audio

    path = tmp_path / "00001.aac"
    _write_aac(path, 16000 * 4 + 700, container_format="adts")
    seconds = planning.header_seconds(str(path))
    decoded, _ = audio.load_audio(str(path), 16000)
    # ADTS declares no length (FFmpeg's bit-rate estimate is tens of ms off); the summed
    # packet durations equal what decodes (priming included, which ADTS cannot mark).
    assert abs(seconds - len(decoded) / 16000) <= 0.010


def test_voxceleb2_m4a_split_balances_over_shards(tmp_path):
    lengths = [16000 * n + 300 * n for n in (2, 3, 4, 5, 6, 7, 3, 4)]
    utts = []
    for n, num_samples in enumerate(lengths):
        path = tmp_path / "dev" / "aac" / f"id0{n % 2}" / "v" / f"{n:05d}.m4a"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_aac(path, num_samples, seed=n)
        utts.append(Utterance(f"id0{n % 2}/v/{n:05d}", str(path), f"id0{n % 2}"))
    plan = planning.make_plan(utts, "train", 4, {"id00": 0, "id01": 1}, {})
    seconds = np.array([item.seconds for item in plan.items])
    np.testing.assert_allclose(seconds, np.array(lengths) / 16000, atol=0.010)
    loads = _loads(seconds, [item.shard for item in plan.items], 4)
    assert (loads > 0).all() and loads.max() - loads.min() <= seconds.max()


def test_m4a_without_pyav_stops_planning_with_the_install_hint(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    path = tmp_path / "00001.m4a"
    path.write_bytes(b"never opened")
    with pytest.raises(planning.PlanningError,
                       match=r"00001.m4a: .*PyAV.*pip install 'tfspk\[m4a\]'"):
        planning.make_plan([Utterance("u", str(path), "s")], "train", 1, {"s": 0}, {})
