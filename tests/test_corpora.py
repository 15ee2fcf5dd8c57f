"""Tests for tfspk.corpora on small trees in the corpora's real on-disk formats.

Text files (PHN/WRD/TXT, Kaldi data dirs, lists) are fixtures under
tests/fixtures/corpora; audio is written at test time into tmp_path.
"""
import os
import pathlib
import shutil

import numpy as np
import pytest
import soundfile

from tfspk import phones
from tfspk.audio import load_audio, write_wav
from tfspk.corpora import (CorpusFormatError, PhoneSegment, WordSegment, apply_iden_split,
                           read_data_dir, read_iden_split, read_manifest, read_musan,
                           read_phn, read_rirs, read_timit, read_voxceleb, read_wrd)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "corpora"


def copy_fixture(name, tmp_path):
    return pathlib.Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def tone(num_samples, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.1, num_samples)).clip(-1, 1).astype(np.float32)


def timit_sphere_bytes(pcm, utterance_id):
    """A TIMIT-style NIST_1A file: 1024-byte header with TIMIT's fields, then int16 LE."""
    header = (
        "NIST_1A\n   1024\n"
        "database_id -s5 TIMIT\n"
        "database_version -s3 1.0\n"
        f"utterance_id -s{len(utterance_id)} {utterance_id}\n"
        "channel_count -i 1\n"
        f"sample_count -i {len(pcm)}\n"
        "sample_rate -i 16000\n"
        f"sample_min -i {int(pcm.min())}\n"
        f"sample_max -i {int(pcm.max())}\n"
        "sample_n_bytes -i 2\n"
        "sample_byte_format -s2 01\n"
        "sample_sig_bits -i 16\n"
        "end_head\n").encode("ascii")
    return header.ljust(1024, b" ") + pcm.astype("<i2").tobytes()


def write_timit_audio(root):
    """Writes SPHERE audio for every .PHN in the tree, as long as the PHN says."""
    written = {}
    for phn in sorted(root.rglob("*.PHN")):
        num_samples = int(phn.read_text().split()[-2])
        pcm = (tone(num_samples, seed=len(written)) * 32768).astype(np.int16)
        speaker = phn.parent.name.lower()
        phn.with_suffix(".WAV").write_bytes(
            timit_sphere_bytes(pcm, f"{speaker[1:]}_{phn.stem.lower()}"))
        written[f"{phn.parent.name}_{phn.stem}"] = pcm
    return written


# ---------------------------------------------------------------------------------- TIMIT

def test_read_timit_with_sphere_audio(tmp_path):
    root = copy_fixture("timit", tmp_path)
    pcm = write_timit_audio(root)
    utterances = read_timit(root)
    assert [utt.utt_id for utt in utterances] == ["FCJF0_SA1", "MABW0_SX134"]
    sa1, sx134 = utterances
    assert sa1.speaker == "FCJF0"
    assert sa1.meta == {"split": "TRAIN", "dialect": "DR1", "sex": "F"}
    assert sx134.meta == {"split": "TEST", "dialect": "DR2", "sex": "M"}
    assert sa1.phones[0] == PhoneSegment(0, 2260, "h#")
    assert sa1.phones[-1] == PhoneSegment(9900, 16000, "h#")
    assert len(sa1.phones) == 9 and len(sx134.phones) == 7
    assert sa1.words == (WordSegment(2260, 5080, "she"), WordSegment(5080, 8830, "had"),
                         WordSegment(8510, 9900, "your"))
    assert sa1.text == "She had your."
    # The SPHERE header is TIMIT's: 1024 bytes, read by soundfile as NIST.
    header = pathlib.Path(sa1.path).read_bytes()[:1024]
    assert header.startswith(b"NIST_1A\n   1024\n") and b"database_id -s5 TIMIT" in header
    assert soundfile.info(sa1.path).format == "NIST"
    samples, rate = load_audio(sa1.path)
    assert rate == 16000 and len(samples) == sa1.phones[-1].end
    np.testing.assert_array_equal(samples * 32768, pcm["FCJF0_SA1"])
    # Folded and broad labels of the alignment (q of SX134 is deleted).
    folded = [phones.fold_to_39(p.label) for p in sx134.phones]
    assert folded == ["sil", "dh", "ih", None, "aa", "l", "sil"]
    assert [phones.broad_class(p.label) for p in sa1.phones[4:7]] == [
        "vowel", "closure", "affricate"]


def test_read_timit_split_and_ldc_nesting(tmp_path):
    root = copy_fixture("timit", tmp_path / "TIMIT")
    write_timit_audio(root)
    # LDC's disc holds TIMIT/TIMIT/TRAIN: the outer folder works too.
    test_only = read_timit(tmp_path / "TIMIT", split="test")
    assert [utt.utt_id for utt in test_only] == ["MABW0_SX134"]
    with pytest.raises(ValueError, match="split must be"):
        read_timit(root, split="dev")


def test_read_timit_lower_case_copy_with_riff_conversions(tmp_path):
    upper = copy_fixture("timit", tmp_path / "upper")
    pcm = write_timit_audio(upper)
    lower = tmp_path / "lower"
    for path in sorted(upper.rglob("*")):
        if path.is_file():
            target = lower / path.relative_to(upper).as_posix().lower()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            if path.suffix == ".WAV":  # mirrors add RIFF copies named sa1.wav.wav
                write_wav(str(target) + ".wav", np.zeros(10, np.float32), 16000)
    utterances = read_timit(lower)
    assert [utt.utt_id for utt in utterances] == ["FCJF0_SA1", "MABW0_SX134"]
    assert utterances[0].path.endswith(os.path.join("fcjf0", "sa1.wav"))
    assert utterances[0].meta["dialect"] == "DR1"
    samples, _ = load_audio(utterances[1].path)
    np.testing.assert_array_equal(samples * 32768, pcm["MABW0_SX134"])


@pytest.mark.parametrize("line,message", [
    ("2260 3720.5 sh", "positions must be integers"),
    ("3720 2260 sh", "need 0 <= start < end"),
    ("2000 3720 sh", "overlaps the previous phone"),
    ("2300 3720 sh", "leaves a gap after the previous phone"),
    ("2260 3720 zz", "unknown phone label 'zz'"),
    ("2260 3720", "expected 3 fields, found 2"),
])
def test_malformed_phn_lines_name_file_and_line(tmp_path, line, message):
    lines = (FIXTURES / "timit/TRAIN/DR1/FCJF0/SA1.PHN").read_text().splitlines()
    lines[1] = line
    path = tmp_path / "SA1.PHN"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=message) as info:
        read_phn(path)
    assert str(info.value).startswith(f"{path}:2: ")
    assert info.value.line == 2 and info.value.path == str(path)


def test_phn_must_start_at_zero_and_not_be_empty(tmp_path):
    path = tmp_path / "X.PHN"
    path.write_text("100 200 h#\n")
    with pytest.raises(CorpusFormatError, match=r"X.PHN:1: .*gap after sample 0"):
        read_phn(path)
    path.write_text("\n")
    with pytest.raises(CorpusFormatError, match="no phones"):
        read_phn(path)
    with pytest.raises(CorpusFormatError, match="MISSING.PHN: file not found"):
        read_phn(tmp_path / "MISSING.PHN")


def test_wrd_allows_overlap_but_not_going_backwards(tmp_path):
    words = read_wrd(FIXTURES / "timit/TRAIN/DR1/FCJF0/SA1.WRD")
    assert words[1].end > words[2].start  # "had" and "your" share the jh
    path = tmp_path / "SA1.WRD"
    path.write_text("2260 5080 she\n2000 3000 had\n")
    with pytest.raises(CorpusFormatError, match=r"SA1.WRD:2: word 'had' starts at 2000"):
        read_wrd(path)


def test_timit_utterance_without_audio_is_an_error(tmp_path):
    root = copy_fixture("timit", tmp_path)
    write_timit_audio(root)
    (root / "TEST/DR2/MABW0/SX134.WAV").unlink()
    with pytest.raises(CorpusFormatError, match="SX134 has transcriptions but no .WAV"):
        read_timit(root)
    with pytest.raises(CorpusFormatError, match="TIMIT folder not found"):
        read_timit(tmp_path / "absent")


# ---------------------------------------------------------------------------------- Kaldi

def kaldi_tree(tmp_path):
    root = copy_fixture("kaldi_data", tmp_path)
    (root / "audio").mkdir()
    recordings = {}
    for index, name in enumerate(("rec1", "rec2")):
        recordings[name] = tone(32000, seed=index)
        write_wav(root / "audio" / f"{name}.wav", recordings[name], 16000)
    return root, recordings


def test_read_kaldi_data_dir_with_segments(tmp_path):
    root, recordings = kaldi_tree(tmp_path)
    utterances = read_data_dir(root / "train", base_dir=root)
    assert [(u.utt_id, u.speaker, u.start, u.end) for u in utterances] == [
        ("spkA-rec1-000", "spkA", 0, 12000),
        ("spkA-rec1-001", "spkA", 12000, None),
        ("spkB-rec2-000", "spkB", 8000, 20000)]
    assert utterances[0].path == str(root / "audio" / "rec1.wav")
    assert utterances[2].meta == {"recording": "rec2"}
    assert utterances[1].text == "GOOD  MORNING"
    # The sample positions select exactly the segment's audio.
    segment, _ = load_audio(utterances[2].path, start=utterances[2].start,
                            end=utterances[2].end)
    pcm = np.clip(np.round(recordings["rec2"] * 32768), -32768, 32767)
    np.testing.assert_array_equal(segment * 32768, pcm[8000:20000])
    at_8k = read_data_dir(root / "train", sample_rate=8000, base_dir=root)
    assert (at_8k[2].start, at_8k[2].end) == (4000, 10000)
    # Default base_dir: the folder above data/, as Kaldi recipes run from there.
    (root / "data").mkdir()
    shutil.move(str(root / "train"), str(root / "data" / "train"))
    assert read_data_dir(root / "data" / "train")[0].path == str(root / "audio" / "rec1.wav")


def test_kaldi_without_segments_uses_recordings(tmp_path):
    root, _ = kaldi_tree(tmp_path)
    train = root / "train"
    for name in ("segments", "spk2utt", "text"):
        (train / name).unlink()
    (train / "utt2spk").write_text("rec1 spkA\nrec2 spkB\n")
    utterances = read_data_dir(train, base_dir=root)
    assert [(u.utt_id, u.start, u.end, u.meta) for u in utterances] == [
        ("rec1", 0, None, {}), ("rec2", 0, None, {})]


@pytest.mark.parametrize("file_name,content,message", [
    ("wav.scp", "rec1 audio/rec1.wav\nrec2 sox audio/rec2.flac -t wav - |\n",
     r"wav.scp:2: recording 'rec2' is a piped command .*only plain paths are supported"),
    ("wav.scp", "rec1 audio/rec1.wav\nrec2 audio/none.wav\n",
     r"wav.scp:2: audio of recording 'rec2' not found"),
    ("wav.scp", "rec1 audio/rec1.wav\nrec1 audio/rec2.wav\n",
     r"wav.scp:2: 'rec1' already appears on line 1"),
    ("spk2utt", "spkA spkA-rec1-000\nspkB spkB-rec2-000 spkA-rec1-001\n",
     r"spk2utt:2: utterance 'spkA-rec1-001' belongs to speaker 'spkB' here but to 'spkA'"),
    ("spk2utt", "spkA spkA-rec1-000 spkA-rec1-001\n",
     r"utt2spk:3: utterance 'spkB-rec2-000' is missing from spk2utt"),
    ("segments", "spkA-rec1-000 rec1 0.00 0.75\nspkA-rec1-001 rec1 0.75 -1\n",
     r"utt2spk:3: utterance 'spkB-rec2-000' has no entry in segments"),
    ("segments", "spkA-rec1-000 rec1 0.00 0.75\nspkA-rec1-001 rec1 0.75 -1\n"
     "spkB-rec2-000 rec2 1.25 0.50\n", r"segments:3: need 0 <= start < end"),
    ("segments", "spkA-rec1-000 rec1 0.00 0.75\nspkA-rec1-001 rec3 0.75 -1\n",
     r"segments:2: recording 'rec3' is not in wav.scp"),
    ("segments", "spkA-rec1-000 rec1 zero 0.75\n", r"segments:1: times must be numbers"),
    ("utt2spk", "spkA-rec1-000\n", r"utt2spk:1: expected 2 fields, found 1"),
])
def test_kaldi_errors_name_file_and_line(tmp_path, file_name, content, message):
    root, _ = kaldi_tree(tmp_path)
    (root / "train" / file_name).write_text(content)
    with pytest.raises(CorpusFormatError, match=message):
        read_data_dir(root / "train", base_dir=root)


def test_kaldi_missing_wav_scp(tmp_path):
    root, _ = kaldi_tree(tmp_path)
    (root / "train" / "wav.scp").unlink()
    with pytest.raises(CorpusFormatError, match="wav.scp: wav.scp not found"):
        read_data_dir(root / "train", base_dir=root)


# ------------------------------------------------------------------------------- VoxCeleb

VOX1_FILES = ("id10001/1zcIwhmdeo4/00001", "id10001/1zcIwhmdeo4/00002",
              "id10001/7w0IBEWc9Qw/00001", "id10002/0_laIeN-Q44/00001",
              "id10002/0_laIeN-Q44/00002")


def test_read_voxceleb1_and_iden_split(tmp_path):
    for index, utt_id in enumerate(VOX1_FILES):
        path = tmp_path / "wav" / f"{utt_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, tone(1600, seed=index), 16000)
    (tmp_path / "README.txt").write_text("not audio")
    utterances = read_voxceleb(tmp_path)
    assert [utt.utt_id for utt in utterances] == list(VOX1_FILES)
    assert utterances[3].speaker == "id10002"
    assert utterances[3].meta == {"session": "0_laIeN-Q44"}
    assert load_audio(utterances[0].path)[0].shape == (1600,)
    split = read_iden_split(FIXTURES / "voxceleb" / "iden_split.txt")
    assert split["id10001/1zcIwhmdeo4/00002"] == "dev"
    subsets = apply_iden_split(utterances, split)
    assert {name: [u.utt_id for u in utts] for name, utts in subsets.items()} == {
        "train": ["id10001/1zcIwhmdeo4/00001", "id10002/0_laIeN-Q44/00001"],
        "dev": ["id10001/1zcIwhmdeo4/00002"],
        "test": ["id10001/7w0IBEWc9Qw/00001", "id10002/0_laIeN-Q44/00002"]}
    with pytest.raises(CorpusFormatError, match="listed utterances have no audio"):
        apply_iden_split(utterances[:2], split)


def test_read_voxceleb2_dev_and_test_layouts(tmp_path):
    # The reader lists files; decoding m4a is load_audio's job (tested in test_audio).
    for utt_id, folder in (("id00012/21Uxsk56VDQ/00001", "dev/aac"),
                           ("id00015/0fijmz4vTVU/00001", "aac")):
        path = tmp_path / folder / f"{utt_id}.m4a"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    utterances = read_voxceleb(tmp_path)
    assert [(u.utt_id, u.speaker) for u in utterances] == [
        ("id00012/21Uxsk56VDQ/00001", "id00012"), ("id00015/0fijmz4vTVU/00001", "id00015")]
    assert utterances[0].path == str(tmp_path / "dev/aac/id00012/21Uxsk56VDQ/00001.m4a")


def test_voxceleb_layout_errors(tmp_path):
    with pytest.raises(CorpusFormatError, match="no wav/, aac/ or dev/aac/ folder"):
        read_voxceleb(tmp_path)
    stray = tmp_path / "wav" / "id10001" / "00001.wav"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    with pytest.raises(CorpusFormatError, match=r"00001.wav: audio file at the wrong depth"):
        read_voxceleb(tmp_path)
    bad_split = tmp_path / "iden_split.txt"
    bad_split.write_text("1 id10001/a/00001.wav\n4 id10001/a/00002.wav\n")
    with pytest.raises(CorpusFormatError, match=r"iden_split.txt:2: subset code must be"):
        read_iden_split(bad_split)


VOX1_META_HEADER = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"


def write_vox1_tree(root, utt_ids):
    for index, utt_id in enumerate(utt_ids):
        path = root / "wav" / f"{utt_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, tone(800, seed=index), 16000)


def test_read_voxceleb_subset_from_vox1_meta(tmp_path):
    # One tree holding both parts, the table one level up (beside vox1_dev_wav/ etc.),
    # with the real file's trailing spaces on some fields.
    tree = tmp_path / "vox1"
    write_vox1_tree(tree, VOX1_FILES + ("id10003/abcdefghijk/00001",))
    (tmp_path / "vox1_meta.csv").write_text(
        VOX1_META_HEADER + "id10001\tA.J._Buckley\tm\tIreland\tdev \n"
        "id10002\tAJ_Lee\tf\tUSA\ttest\n\n"
        "id10003\tAaron_Tveit\tm\tUSA\tdev\n")
    dev = read_voxceleb(tree, subset="dev")
    assert [u.utt_id for u in dev] == list(VOX1_FILES[:3]) + ["id10003/abcdefghijk/00001"]
    test = read_voxceleb(tree, subset="test")
    assert [u.utt_id for u in test] == list(VOX1_FILES[3:])
    # Together the parts are the whole tree, and an explicit table path wins.
    assert sorted(u.utt_id for u in dev + test) == [u.utt_id for u in read_voxceleb(tree)]
    (tree / "vox1_meta.csv").write_text(VOX1_META_HEADER + "id10001\tx\tm\tx\ttest\n"
                                        "id10002\tx\tf\tx\ttest\n"
                                        "id10003\tx\tm\tx\ttest\n")
    assert len(read_voxceleb(tree, subset="test")) == 6  # <root>/vox1_meta.csv first
    assert len(read_voxceleb(tree, subset="dev", meta_path=tmp_path / "vox1_meta.csv")) == 4
    with pytest.raises(CorpusFormatError, match=r"vox1_meta.csv: no audio of a speaker "
                                                r"whose Set is 'dev'"):
        read_voxceleb(tree, subset="dev")
    with pytest.raises(ValueError, match="subset must be one of"):
        read_voxceleb(tree, subset="train")


@pytest.mark.parametrize("content, message", [
    ("VoxCeleb1 ID\tGender\n", r"vox1_meta.csv:1: header lacks column\(s\) \['Set'\]"),
    (VOX1_META_HEADER + "id10001\tx\tm\tIreland\tdev\nid10002\tx\tf\ttest\n",
     r"vox1_meta.csv:3: expected 5 tab-separated fields like the header, found 4"),
    (VOX1_META_HEADER + "\nid10001\tx\tm\tIreland\ttrain\n",
     r"vox1_meta.csv:3: Set must be one of \('dev', 'test'\), got 'train'"),
    (VOX1_META_HEADER + "id10001\tx\tm\tI\tdev\nid10001\tx\tm\tI\ttest\n",
     r"vox1_meta.csv:3: speaker 'id10001' already appears on line 2"),
    (VOX1_META_HEADER + "id10001\tx\tm\tI\tdev\n",
     r"vox1_meta.csv: speaker 'id10002' \(.*00001.wav\) is not listed"),
])
def test_vox1_meta_errors_name_file_and_line(tmp_path, content, message):
    write_vox1_tree(tmp_path, VOX1_FILES)
    (tmp_path / "vox1_meta.csv").write_text(content)
    with pytest.raises(CorpusFormatError, match=message):
        read_voxceleb(tmp_path, subset="dev")


def test_vox1_meta_missing_names_both_places(tmp_path):
    write_vox1_tree(tmp_path / "vox1", VOX1_FILES[:1])
    with pytest.raises(CorpusFormatError, match=r"no vox1_meta.csv .*vox1/vox1_meta.csv and "
                                                r".*/vox1_meta.csv"):
        read_voxceleb(tmp_path / "vox1", subset="test")
    with pytest.raises(CorpusFormatError, match=r"elsewhere.csv: file not found"):
        read_voxceleb(tmp_path / "vox1", subset="test", meta_path=tmp_path / "elsewhere.csv")
    # Without a subset the table is never needed.
    assert len(read_voxceleb(tmp_path / "vox1")) == 1


# ---------------------------------------------------------------------------------- MUSAN

MUSAN_FILES = ("noise/free-sound/noise-free-sound-0000.wav",
               "noise/sound-bible/noise-sound-bible-0000.wav",
               "music/fma/music-fma-0000.wav", "music/fma/music-fma-0001.wav",
               "speech/librivox/speech-librivox-0000.wav")


def musan_tree(tmp_path):
    root = copy_fixture("musan", tmp_path)
    for index, name in enumerate(MUSAN_FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_wav(root / name, tone(800, seed=index), 16000)
        (root / name).parent.joinpath("LICENSE").write_text("licence text")
    return root


def test_read_musan(tmp_path):
    musan_tree(tmp_path)
    corpus = read_musan(tmp_path)  # the parent of musan/ works too
    assert {category: [u.utt_id for u in utts] for category, utts in corpus.items()} == {
        "noise": ["noise-free-sound-0000", "noise-sound-bible-0000"],
        "music": ["music-fma-0000", "music-fma-0001"],
        "speech": ["speech-librivox-0000"]}
    music = corpus["music"]
    assert music[0].meta == {"category": "music", "source": "fma", "vocals": False}
    assert music[1].meta["vocals"] is True
    assert corpus["noise"][1].meta == {"category": "noise", "source": "sound-bible"}
    assert corpus["speech"][0].speaker == "speech-librivox-0000"


def test_musan_errors(tmp_path):
    root = musan_tree(tmp_path)
    (root / "music/fma/ANNOTATIONS").write_text("music-fma-0000 Electronic maybe X\n")
    with pytest.raises(CorpusFormatError, match=r"ANNOTATIONS:1: third field \(vocals\)"):
        read_musan(root)
    (root / "music/fma/ANNOTATIONS").unlink()
    shutil.rmtree(root / "speech")
    with pytest.raises(CorpusFormatError, match="no speech/ folder"):
        read_musan(root)


# ----------------------------------------------------------------------------- RIRS_NOISES

RIR_FILES = ("simulated_rirs/smallroom/Room001/Room001-00001.wav",
             "simulated_rirs/smallroom/Room001/Room001-00002.wav",
             "simulated_rirs/smallroom/Room002/Room002-00001.wav",
             "real_rirs_isotropic_noises/air_type1_air_binaural_aula_carolina_1_1_90_3.wav",
             "real_rirs_isotropic_noises/RVB2014_type1_rir_largeroom1_far_angla.wav",
             "real_rirs_isotropic_noises/RVB2014_type1_noise_largeroom1_1.wav")


def rirs_tree(tmp_path):
    root = copy_fixture("rirs", tmp_path) / "RIRS_NOISES"
    for index, name in enumerate(RIR_FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_wav(root / name, tone(400, seed=index), 16000)
    return root


def test_read_rirs_from_rir_lists(tmp_path):
    root = rirs_tree(tmp_path)
    rirs = read_rirs(root.parent)
    assert [(r.utt_id, r.speaker) for r in rirs] == [
        ("smallroom-Room001-00001", "smallroom-Room001"),
        ("smallroom-Room001-00002", "smallroom-Room001"),
        ("smallroom-Room002-00001", "smallroom-Room002"),
        ("air_type1_air_binaural_aula_carolina_1_1_90_3",
         "air_type1_air_binaural_aula_carolina_1"),
        ("RVB2014_type1_rir_largeroom1_far_angla", "RVB2014_type1_rir_largeroom1")]
    assert rirs[0].path == str(root / RIR_FILES[0])
    assert rirs[0].meta == {"kind": "simulated", "room_id": "smallroom-Room001"}
    assert rirs[3].meta["rt60"] == pytest.approx(0.81)
    # Kaldi's "sox <file> -t wav - remix 2 |" picks the second channel.
    assert rirs[4].meta == {"kind": "real", "room_id": "RVB2014_type1_rir_largeroom1",
                            "receiver_position_id": "far", "channel": 1}
    assert rirs[4].path == str(root / RIR_FILES[4])


def test_read_rirs_without_rir_lists(tmp_path):
    root = rirs_tree(tmp_path)
    for rir_list in root.rglob("rir_list"):
        rir_list.unlink()
    rirs = read_rirs(root)
    assert [r.utt_id for r in rirs] == [
        "smallroom-Room001-00001", "smallroom-Room001-00002", "smallroom-Room002-00001",
        "RVB2014_type1_rir_largeroom1_far_angla",
        "air_type1_air_binaural_aula_carolina_1_1_90_3"]  # the noise file is left out
    assert rirs[2].speaker == "smallroom-Room002"


def test_rir_list_errors(tmp_path):
    root = rirs_tree(tmp_path)
    rir_list = root / "simulated_rirs/smallroom/rir_list"
    lines = rir_list.read_text().splitlines()
    rir_list.write_text("\n".join(lines[:2] + [lines[2].replace("00001.wav", "00009.wav")]))
    with pytest.raises(CorpusFormatError, match=r"rir_list:3: RIR file .*00009.wav.* not "
                                                r"found"):
        read_rirs(root)
    rir_list.write_text("--room-id r1 --rt-60 0.5 a.wav --x y\n")
    with pytest.raises(CorpusFormatError, match=r"rir_list:1: missing --rir-id"):
        read_rirs(root)


# ------------------------------------------------------------------------------- manifest

def test_read_manifest(tmp_path):
    (tmp_path / "audio" / "spk1").mkdir(parents=True)
    for name in ("a", "b"):
        write_wav(tmp_path / "audio" / "spk1" / f"{name}.flac.wav", tone(100), 16000)
    elsewhere = tmp_path / "elsewhere.wav"
    write_wav(elsewhere, tone(100), 16000)
    manifest = tmp_path / "lists" / "train.tsv"
    manifest.parent.mkdir()
    manifest.write_text("path\tspeaker\tutt_id\n"
                        "../audio/spk1/a.flac.wav\tspk1\n"
                        "# a comment\n\n"
                        f"{elsewhere}\tspk2\tu2\n"
                        "../audio/spk1/b.flac.wav\tspk1\tu3\n")
    utterances = read_manifest(manifest)
    assert [(u.utt_id, u.speaker, u.path) for u in utterances] == [
        ("../audio/spk1/a.flac", "spk1", str(tmp_path / "audio/spk1/a.flac.wav")),
        ("u2", "spk2", str(elsewhere)),
        ("u3", "spk1", str(tmp_path / "audio/spk1/b.flac.wav"))]


@pytest.mark.parametrize("content,message", [
    ("a.wav\tspk1\nb.wav\n", r"train.tsv:2: expected path<TAB>speaker"),
    ("a.wav spk1\n", r"train.tsv:1: expected path<TAB>speaker"),
    ("a.wav\tspk1\tx\nb.wav\tspk2\tx\n", r"train.tsv:2: utterance id 'x' already appears "
                                         r"on line 1"),
    ("a.wav\tspk1\nmissing.wav\tspk1\n", r"train.tsv:2: audio file not found: .*missing"),
    ("", r"train.tsv: no utterances"),
])
def test_manifest_errors(tmp_path, content, message):
    for name in ("a", "b"):
        write_wav(tmp_path / f"{name}.wav", tone(100), 16000)
    manifest = tmp_path / "train.tsv"
    manifest.write_text(content)
    with pytest.raises(CorpusFormatError, match=message):
        read_manifest(manifest)


def test_rir_list_accepts_kaldi_reverberate_options(tmp_path):
    # The options Kaldi's steps/data/reverberate_data_dir.py documents for an RIR list.
    root = rirs_tree(tmp_path)
    rir_list = root / "simulated_rirs/smallroom/rir_list"
    rir_list.write_text(
        "--rir-id smallroom-Room001-00001 --room-id smallroom-Room001 --rt60 0.42 "
        "--cte 12.5 --probability 0.5 RIRS_NOISES/" + RIR_FILES[0] + "\n")
    rirs = [r for r in read_rirs(root) if r.meta["kind"] == "simulated"]
    assert len(rirs) == 1
    assert rirs[0].meta["rt60"] == pytest.approx(0.42)
    assert rirs[0].meta["cte"] == pytest.approx(12.5)
    assert rirs[0].meta["probability"] == pytest.approx(0.5)
