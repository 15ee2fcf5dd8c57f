"""Tests of the espeak-ng synthetic corpus: engine, alignment, voices, layouts, determinism."""
import hashlib
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
import soundfile

from tfspk.phones import BROAD_CLASSES, TIMIT61
from tfspk.synth import alignment, corpus, espeak, rir, sentences, sphere, voices

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMIT_SPHERE_FIELDS = ["database_id", "database_version", "utterance_id", "channel_count",
                       "sample_count", "sample_rate", "sample_min", "sample_max",
                       "sample_n_bytes", "sample_byte_format", "sample_sig_bits"]
SONORANTS = set(BROAD_CLASSES["vowel"]) | set(BROAD_CLASSES["nasal"]) | {"l", "r", "w", "y",
                                                                        "el"}


def tree_digest(root):
    """{relative path: sha256} of every file under root."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(pathlib.Path(root).rglob("*")) if path.is_file()}


def read_segments(path):
    rows = []
    with open(path, encoding="ascii") as handle:
        for line in handle:
            start, end, label = line.split(maxsplit=2)
            rows.append((int(start), int(end), label.strip()))
    return rows


@pytest.fixture(scope="module")
def timit_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("timit")
    summary = corpus.generate_timit(str(root), num_speakers=4, utts_per_speaker=10, seed=11,
                                    spread=1.0, num_workers=2)
    return root, summary


@pytest.fixture(scope="module")
def voxceleb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vox")
    summary = corpus.generate_voxceleb(str(root), num_speakers=5, utts_per_speaker=4, seed=3,
                                       num_test_speakers=2, sessions_per_speaker=2,
                                       num_workers=2)
    return root, summary


# ----------------------------------------------------------------------------- mapping


def test_every_mapped_label_is_timit61():
    produced = set()
    for mnemonic in list(alignment._SIMPLE) + list(alignment._FUSED) + ["_:", "_"]:
        for rhotic in (True, False):
            produced.update(alignment.timit_labels(mnemonic, rhotic))
    produced.update(alignment._CLOSURE_OF.values())
    produced.add("h#")
    assert produced <= set(TIMIT61)


def test_stress_marks_fused_phones_and_unknowns():
    assert alignment.timit_labels("'A@") == ("aa", "r")
    assert alignment.timit_labels(",e@", rhotic=False) == ("eh", "ax")
    assert alignment.timit_labels("'O@", rhotic=False) == ("ao",)
    assert alignment.timit_labels(";") == ("y",)
    with pytest.raises(alignment.AlignmentError, match="'Q9'"):
        alignment.timit_labels("Q9")


def test_to_rate_rounds_boundaries_exactly():
    segments = [alignment.Segment(0, 100, "h#"), alignment.Segment(100, 22050, "s"),
                alignment.Segment(22050, 30001, "h#")]
    converted = alignment.to_rate(segments, 30001, 21769)
    assert converted == [alignment.Segment(0, 73, "h#"),  # 100 * 16000 / 22050 = 72.56
                         alignment.Segment(73, 16000, "s"), alignment.Segment(16000, 21769, "h#")]


# ----------------------------------------------------------------------------- engine + alignment


def test_engine_events_cover_audio_and_mnemonics_map_in_every_accent(tmp_path):
    engine = espeak.get_engine()
    rng = np.random.default_rng(0)
    for number, accent in enumerate(voices.ACCENTS):
        voice = voices.random_voice(rng, 1.0, accent=accent)
        engine.set_voice_file(voice.write(str(tmp_path / f"v{number}.voice")))
        for text in sentences.random_sentences(rng, 3) + list(sentences.SHARED_SENTENCES):
            synthesis = engine.synthesize(text)
            assert synthesis.samples.dtype == np.int16 and len(synthesis.samples) > 0.5 * 22050
            assert synthesis.phonemes[-1].sample == len(synthesis.samples)
            phones, words = alignment.align(synthesis, rhotic=voice.rhotic)
            assert phones[0].start == 0 and phones[-1].end == len(synthesis.samples)
            assert all(a.end == b.start and a.end > a.start for a, b in zip(phones, phones[1:]))
            assert {segment.label for segment in phones} <= set(TIMIT61)
            expected = [word for _, _, word in sentences.words_of(text)]
            assert [word.word for word in words] == expected
            # Voiceless closures are the silent stretch before the burst.
            for segment in phones:
                if segment.label in ("pcl", "tcl", "kcl"):
                    assert np.abs(synthesis.samples[segment.start:segment.end]).max() <= \
                        alignment.SILENCE_LEVEL


def test_engine_rejects_bad_input(tmp_path):
    engine = espeak.get_engine()
    with pytest.raises(espeak.EspeakError, match="empty"):
        engine.synthesize("  ")
    with pytest.raises(espeak.EspeakError, match="not found"):
        engine.set_voice_file(str(tmp_path / "missing.voice"))
    # espeak-ng itself lower-cases and truncates voice paths; the engine stages the file.
    long_dir = tmp_path / ("Long" * 20)
    long_dir.mkdir()
    voice = voices.random_voice(np.random.default_rng(0), accent="en-gb-scotland")
    engine.set_voice_file(voice.write(str(long_dir / "Upper.voice")))
    phones, _ = alignment.align(engine.synthesize("A cold Burn."), rhotic=True)
    assert phones[-1].end > 0


def test_voiced_stop_gets_voice_bar_closure():
    engine = espeak.get_engine()
    engine.set_voice_name("en-us")
    phones, _ = alignment.align(engine.synthesize("A big bag."))
    labels = [segment.label for segment in phones]
    assert labels[:3] == ["ax", "bcl", "b"]
    closure = phones[1]
    # The voice bar is voiced but quiet: far below the following vowel.
    samples = engine.synthesize("A big bag.").samples.astype(float)
    vowel = next(segment for segment in phones[3:] if segment.label == "ih")
    bar_rms = np.sqrt(np.mean(samples[closure.start:closure.end] ** 2))
    vowel_rms = np.sqrt(np.mean(samples[vowel.start:vowel.end] ** 2))
    assert 0 < bar_rms < 0.35 * vowel_rms


# ----------------------------------------------------------------------------- voices, sentences


def test_spread_scales_voice_deviation():
    def pitch_sd(spread):
        rng = np.random.default_rng(1)
        bases = [voices.random_voice(rng, spread, sex="M").pitch_base for _ in range(200)]
        return np.std(bases)

    assert pitch_sd(0.0) == 0.0
    assert pitch_sd(0.5) < pitch_sd(1.0) < pitch_sd(2.0)
    assert voices.random_voice(np.random.default_rng(4), 0.0).accent == voices.NEUTRAL_ACCENT
    same = [voices.random_voice(np.random.default_rng(9), 1.0) for _ in range(2)]
    assert same[0] == same[1]
    text = same[0].voice_file_text()
    assert "language en" in text and re.search(r"^pitch \d+ \d+$", text, re.M)
    with pytest.raises(ValueError, match="spread"):
        voices.random_voice(np.random.default_rng(0), -1.0)


def test_sentences_are_seeded_and_safe():
    first = sentences.random_sentences(np.random.default_rng(5), 50)
    assert first == sentences.random_sentences(np.random.default_rng(5), 50)
    assert first != sentences.random_sentences(np.random.default_rng(6), 50)
    for sentence in first:
        assert sentence[0].isupper() and not sentence.startswith("--")
        assert not re.search(r"\b[Aa] [aeiou]", sentence), sentence
        assert "{" not in sentence


# ----------------------------------------------------------------------------- rooms


def test_rir_direct_path_and_rt60():
    rng = np.random.default_rng(2)
    for kind in rir.ROOM_KINDS:
        room = rir.random_room(rng, kind)
        source, receiver = rir.random_position(rng, room), rir.random_position(rng, room)
        response = rir.simulate_rir(room, source, receiver, rng)
        direct = rir.direct_index(source, receiver)
        distance = np.linalg.norm(np.subtract(source, receiver))
        assert direct == round(distance * 16000 / 343.0)
        assert np.flatnonzero(response)[0] == direct and response[direct] >= 1.0
        late = response[direct + int(rir.EARLY_MS * 16):]
        assert rir.estimate_rt60(late) == pytest.approx(room.rt60, rel=0.15)


# ----------------------------------------------------------------------------- TIMIT layout


def test_timit_layout_and_sphere_headers(timit_dir):
    root, summary = timit_dir
    speakers = sorted(path for path in root.glob("*/DR*/*") if path.is_dir())
    assert len(speakers) == summary["speakers"] == 4
    assert {path.parts[-3] for path in speakers} == {"TRAIN", "TEST"}
    for speaker in speakers:
        assert re.fullmatch(r"[FM][A-Z]{3}\d", speaker.name)
        assert re.fullmatch(r"DR[1-8]", speaker.parent.name)
        names = sorted(path.stem for path in speaker.glob("*.WAV"))
        assert {"SA1", "SA2"} <= set(names) and len(names) == 10
        assert sum(name.startswith("SX") for name in names) == 5
        assert sum(name.startswith("SI") for name in names) == 3
        for name in names:
            wav = speaker / f"{name}.WAV"
            header = sphere.read_sphere_header(wav)
            assert list(header) == TIMIT_SPHERE_FIELDS
            samples, rate = soundfile.read(wav, dtype="int16")
            assert soundfile.info(wav).format == "NIST" and rate == header["sample_rate"] == 16000
            assert len(samples) == header["sample_count"] == os.path.getsize(wav) // 2 - 512
            assert header["sample_min"] == samples.min()
            phones = read_segments(speaker / f"{name}.PHN")
            assert phones[0][0] == 0 and phones[-1][1] == len(samples)
            assert phones[0][2] == "h#" and phones[-1][2] == "h#"
            assert all(a[1] == b[0] and a[1] > a[0] for a, b in zip(phones, phones[1:]))
            assert {label for _, _, label in phones} <= set(TIMIT61)
            words = read_segments(speaker / f"{name}.WRD")
            text = (speaker / f"{name}.TXT").read_text().split(maxsplit=2)
            assert text[:2] == ["0", str(len(samples))]
            assert [word for _, _, word in words] == [w for _, _, w in
                                                      sentences.words_of(text[2])]
            assert all(phones[0][1] <= start < end <= phones[-1][0] for start, end, _ in words)
    sa1 = {(speaker / "SA1.TXT").read_text().split(maxsplit=2)[2].strip() for speaker in speakers}
    assert sa1 == {sentences.SHARED_SENTENCES[0]}


def test_timit_phn_boundaries_match_audio(timit_dir):
    """Silence labels are silent; fricative onsets are within 5 ms of their PHN boundary."""
    root, _ = timit_dir
    highpass = scipy.signal.butter(4, 3500, btype="highpass", fs=16000, output="sos")
    onset_errors_ms, silence_db = [], []
    for wav in sorted(root.glob("*/DR*/*/*.WAV")):
        samples, _ = soundfile.read(wav)
        rms = np.sqrt(np.mean(samples ** 2))
        high_db = 10 * np.log10(np.convolve(scipy.signal.sosfiltfilt(highpass, samples) ** 2,
                                            np.ones(64) / 64, mode="same") + 1e-12)
        phones = read_segments(wav.with_suffix(".PHN"))
        for index, (start, end, label) in enumerate(phones):
            if label in ("h#", "pau") and end - start > 96:
                interior = samples[start + 48:end - 48]  # soxr's filter rings about 1 ms
                silence_db.append(20 * np.log10(np.sqrt(np.mean(interior ** 2)) / rms + 1e-12))
            if (label in ("s", "sh", "z", "f") and index and phones[index - 1][2] in SONORANTS
                    and end - start >= 160 and start >= 160):
                before = high_db[start - 160:start - 80].mean()  # 10-5 ms before
                after = high_db[start + 80:start + 160].mean()  # 5-10 ms after
                if after - before < 10:  # no clear high-band rise to locate
                    continue
                middle = (before + after) / 2
                window = high_db[start - 160:start + 160]
                crossings = np.flatnonzero((window[:-1] <= middle) & (window[1:] > middle))
                onset = crossings[np.argmin(np.abs(crossings + 1 - 160))] + 1
                onset_errors_ms.append(abs(onset - 160) / 16.0)
    assert len(silence_db) >= 80 and max(silence_db) < -60.0
    assert len(onset_errors_ms) >= 20
    assert max(onset_errors_ms) <= 5.0


# ----------------------------------------------------------------------------- VoxCeleb layout


def test_voxceleb_layout_splits_and_trials(voxceleb_dir):
    root, summary = voxceleb_dir
    wavs = sorted((root / "wav").rglob("*.wav"))
    assert len(wavs) == summary["utterances"] == 20
    for wav in wavs:
        speaker, session, name = wav.relative_to(root / "wav").parts
        assert re.fullmatch(r"id1\d{4}", speaker) and re.fullmatch(r"\d{5}\.wav", name)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{10}", session)
        info = soundfile.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    iden = [line.split() for line in (root / "iden_split.txt").read_text().splitlines()]
    assert {split for split, _ in iden} == {"1", "2", "3"}
    train_speakers = {path.split("/")[0] for _, path in iden}
    trials = [line.split() for line in (root / "veri_test.txt").read_text().splitlines()]
    test_speakers = {path.split("/")[0] for _, a, b in trials for path in (a, b)}
    assert test_speakers == {"id10004", "id10005"} and not train_speakers & test_speakers
    assert sum(label == "1" for label, _, _ in trials) == sum(label == "0" for label, _, _ in
                                                              trials) == 8
    for label, enroll, test in trials:
        assert (root / "wav" / enroll).is_file() and (root / "wav" / test).is_file()
        assert (enroll.split("/")[0] == test.split("/")[0]) == (label == "1")
        assert enroll != test
    meta = (root / "vox1_meta.csv").read_text().splitlines()
    assert meta[0].split("\t") == ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]
    assert len(meta) == 6


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_any_worker_count(tmp_path, timit_dir, voxceleb_dir):
    root, _ = timit_dir
    again = tmp_path / "timit"
    corpus.generate_timit(str(again), num_speakers=4, utts_per_speaker=10, seed=11, spread=1.0,
                          num_workers=1)
    assert tree_digest(again) == tree_digest(root)
    vox_root, _ = voxceleb_dir
    vox_again = tmp_path / "vox"
    corpus.generate_voxceleb(str(vox_again), num_speakers=5, utts_per_speaker=4, seed=3,
                             num_test_speakers=2, sessions_per_speaker=2, num_workers=1)
    assert tree_digest(vox_again) == tree_digest(vox_root)
    other = tmp_path / "other"
    corpus.generate_voxceleb(str(other), num_speakers=5, utts_per_speaker=4, seed=4,
                             num_test_speakers=2, sessions_per_speaker=2, num_workers=1)
    first_wav = "wav/id10001"
    assert not any(name.startswith(first_wav) and digest == tree_digest(other).get(name)
                   for name, digest in tree_digest(vox_root).items())


def test_klatt_engine_changes_the_audio_not_the_voice(tmp_path, voxceleb_dir):
    vox_root, _ = voxceleb_dir
    klatt = tmp_path / "klatt"
    summary = corpus.generate_voxceleb(str(klatt), num_speakers=5, utts_per_speaker=4, seed=3,
                                       num_test_speakers=2, sessions_per_speaker=2,
                                       num_workers=2, engine="klatt2")
    assert summary["engine"] == "klatt2"
    espeak_tree, klatt_tree = tree_digest(vox_root), tree_digest(klatt)
    assert set(klatt_tree) == set(espeak_tree)  # same speakers, sessions, trials
    for name in ("iden_split.txt", "veri_test.txt", "vox1_meta.csv"):
        assert klatt_tree[name] == espeak_tree[name]
    # The voice file is the espeak one plus the engine line: every drawn value is shared.
    espeak_voice = (vox_root / "voices" / "id10001.voice").read_text()
    assert (klatt / "voices" / "id10001.voice").read_text() == espeak_voice + "klatt 2\n"
    wavs = sorted(name for name in espeak_tree if name.endswith(".wav"))
    assert wavs and all(klatt_tree[name] != espeak_tree[name] for name in wavs)
    # Not just a gain: the spectra differ (log-spectrum distance of the same sentence).
    first, _ = soundfile.read(vox_root / "wav" / wavs[0][len("wav/"):])
    second, _ = soundfile.read(klatt / "wav" / wavs[0][len("wav/"):])
    spectra = [np.log(scipy.signal.welch(x / np.std(x), 16000, nperseg=512)[1] + 1e-10)
               for x in (first, second)]
    assert np.mean(np.abs(spectra[0] - spectra[1])) > 0.5
    with pytest.raises(corpus.CorpusArgumentError, match="engine"):
        corpus.generate_voxceleb(str(tmp_path / "bad"), 3, 2, engine="klatt9")
    with pytest.raises(ValueError, match="engine"):
        voices.random_voice(np.random.default_rng(0), engine="festival")


def test_augmentation_layout_and_determinism(tmp_path):
    kwargs = dict(num_speakers=1, utts_per_speaker=2, seed=5, num_noise=2, num_music=1,
                  rooms_per_size=1, rirs_per_room=2)
    summary = corpus.generate_augmentation(str(tmp_path / "a"), num_workers=2, **kwargs)
    corpus.generate_augmentation(str(tmp_path / "b"), num_workers=1, **kwargs)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    root = tmp_path / "a"
    assert summary["rirs"] == 6 and summary["noise_files"] == 2
    for category in ("noise", "music", "speech"):
        files = list((root / "musan" / category).rglob("*.wav"))
        assert files
        for path in files:
            samples, rate = soundfile.read(path)
            assert rate == 16000 and np.sqrt(np.mean(samples ** 2)) > 1e-3
    info = {row.split("\t")[0]: row.split("\t")
            for row in (root / "RIRS_NOISES/simulated_rirs/rir_info.tsv").read_text()
            .splitlines()[1:]}
    for kind in rir.ROOM_KINDS:
        listing = (root / "RIRS_NOISES/simulated_rirs" / kind / "rir_list").read_text()
        for line in listing.splitlines():
            match = re.fullmatch(rf"--rir-id ({kind}-Room001-0000[12]) --room-id {kind}-Room001 "
                                 rf"(RIRS_NOISES/simulated_rirs/{kind}/Room001/Room001-0000[12]"
                                 rf"\.wav)", line)
            assert match, line
            response, _ = soundfile.read(root / match.group(2))
            assert np.flatnonzero(response)[0] == int(info[match.group(1)][2])


# ----------------------------------------------------------------------------- CLI


def test_cli_generates_and_validates(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "tfrecords_tools.synth", "--kind=timit",
               f"--output_dir={tmp_path / 'cli'}", "--num_speakers=1", "--utts_per_speaker=2"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"utterances": 2' in done.stdout
    assert len(list((tmp_path / "cli").rglob("*.PHN"))) == 2
    bad = subprocess.run(command[:3] + ["--num_speakers=0", f"--output_dir={tmp_path}"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "num_speakers" in bad.stderr
    engine = subprocess.run(command + ["--engine=klatt7"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert engine.returncode != 0 and "--engine" in engine.stderr
