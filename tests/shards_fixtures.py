"""Tiny corpora written at test time for the tfspk.shards tests."""
from __future__ import annotations

import os
import struct

import numpy as np
import soundfile

from tfspk.schema import parse_example_numpy
from tfspk.shards.metadata import SplitFiles, read_json
from tfspk.shards.verify import read_records

RATE = 16000


def speech_like(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """int16 harmonic signal with a gliding pitch and a syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    signal = 0.2 * envelope * voiced + 0.01 * rng.standard_normal(t.shape)
    return np.clip(np.round(signal * 32768), -32768, 32767).astype(np.int16)


def write_audio(path: str, pcm: np.ndarray, rate: int = RATE, fmt: str = "WAV") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, pcm, rate, subtype="PCM_16", format=fmt)
    return path


def voxceleb_tree(root: str, speakers: int = 3, per_speaker: int = 2) -> dict[str, np.ndarray]:
    """VoxCeleb1 layout wav/<spk>/<session>/<n>.wav; returns {utt_id: pcm}."""
    expected = {}
    for s in range(speakers):
        for n in range(per_speaker):
            utt_id = f"id1000{s}/sess{n % 2}/{n:05d}"
            pcm = speech_like(0.6 + 0.2 * n + 0.1 * s, seed=100 * s + n)
            write_audio(os.path.join(root, "wav", utt_id + ".wav"), pcm)
            expected[utt_id] = pcm
    return expected


def kaldi_dir(root: str) -> dict[str, np.ndarray]:
    """A Kaldi data dir with two FLAC recordings cut by `segments`; {utt_id: pcm}."""
    data_dir = os.path.join(root, "data", "train")
    os.makedirs(data_dir)
    expected, scp, utt2spk, segments = {}, [], [], []
    for r, speaker in enumerate(["spkA", "spkB"]):
        pcm = speech_like(3.0, seed=7 + r)
        path = write_audio(os.path.join(root, "audio", f"rec{r}.flac"), pcm, fmt="FLAC")
        scp.append(f"rec{r} {path}")
        for k, (start_s, end_s) in enumerate([(0.0, 1.0), (1.25, 2.5)]):
            utt_id = f"{speaker}-rec{r}-{k}"
            utt2spk.append(f"{utt_id} {speaker}")
            segments.append(f"{utt_id} rec{r} {start_s} {end_s}")
            expected[utt_id] = pcm[int(start_s * RATE):int(end_s * RATE)]
    for name, lines in (("wav.scp", scp), ("utt2spk", sorted(utt2spk)),
                        ("segments", segments)):
        with open(os.path.join(data_dir, name), "w") as handle:
            handle.write("\n".join(lines) + "\n")
    return expected


TIMIT_PHONES = ("h#", "sh", "iy", "hv", "ae", "dcl", "d", "y", "er", "h#")


def timit_tree(root: str) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """TIMIT TRAIN/TEST layout with NIST SPHERE audio and .PHN files."""
    expected, phones = {}, {}
    for split, dialect, speaker, utt, seed in (("TRAIN", "DR1", "FCJF0", "SA1", 1),
                                                ("TRAIN", "DR1", "FCJF0", "SX37", 2),
                                                ("TEST", "DR2", "MABC0", "SA1", 3)):
        pcm = speech_like(1.0 + 0.1 * seed, seed=seed)
        folder = os.path.join(root, split, dialect, speaker)
        write_audio(os.path.join(folder, utt + ".WAV"), pcm, fmt="NIST")
        edges = np.linspace(0, len(pcm), len(TIMIT_PHONES) + 1).astype(int)
        rows = [(int(a), int(b), lab) for a, b, lab in zip(edges[:-1], edges[1:], TIMIT_PHONES)]
        with open(os.path.join(folder, utt + ".PHN"), "w") as handle:
            handle.writelines(f"{a} {b} {lab}\n" for a, b, lab in rows)
        expected[f"{speaker}_{utt}"] = pcm
        phones[f"{speaker}_{utt}"] = rows
    return expected, phones


def manifest(root: str, count: int = 4) -> tuple[str, dict[str, np.ndarray]]:
    expected, lines = {}, []
    for i in range(count):
        pcm = speech_like(0.7 + 0.15 * i, seed=50 + i)
        write_audio(os.path.join(root, f"spk{i % 2}", f"u{i}.wav"), pcm)
        lines.append(f"spk{i % 2}/u{i}.wav\tspk{i % 2}\tutt{i}")
        expected[f"utt{i}"] = pcm
    path = os.path.join(root, "list.tsv")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path, expected


def write_float_wav(path: str, samples: np.ndarray, rate: int = RATE) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, samples.astype(np.float32), rate, subtype="FLOAT")
    return path


def bad_audio(folder: str) -> dict[str, tuple[str, str]]:
    """One file per kind of bad input: {kind: (path, expected AudioError reason code)}."""
    os.makedirs(folder, exist_ok=True)
    good = speech_like(1.0, seed=999)
    out = {}

    def put(kind, name, code, data=None):
        path = os.path.join(folder, name)
        if data is not None:
            with open(path, "wb") as handle:
                handle.write(data)
        out[kind] = (path, code)
        return path

    put("garbage", "garbage.wav", "unreadable", os.urandom(3000))
    put("empty", "empty.wav", "unreadable", b"")
    whole = os.path.join(folder, "whole.tmpwav")
    write_audio(whole, good)
    data = open(whole, "rb").read()
    os.remove(whole)
    put("truncated", "truncated.wav", "truncated", data[: 44 + len(good)])  # half the PCM
    lying = bytearray(data)
    data_at = lying.index(b"data")
    lying[data_at + 4: data_at + 8] = struct.pack("<I", 4 * 2 * len(good))
    put("lying_header", "lying.wav", "truncated", bytes(lying))
    nan = good.astype(np.float32) / 32768
    nan[100:110] = np.nan
    put("nan", "nan.wav", "non_finite")
    write_float_wav(out["nan"][0], nan)
    inf = good.astype(np.float32) / 32768
    inf[5] = np.inf
    put("inf", "inf.wav", "non_finite")
    write_float_wav(out["inf"][0], inf)
    write_audio(put("too_short", "short.wav", "too_short"), good[:1600])
    write_audio(put("silent", "silent.wav", "silent"), np.zeros(RATE, np.int16))
    write_audio(put("wrong_rate", "rate8k.wav", "sample_rate"), good[:8000], rate=8000)
    write_audio(put("stereo", "stereo.wav", "multichannel"), np.stack([good, good], axis=1))
    return out


def read_split(data_dir: str, split: str) -> dict[str, dict]:
    """{utt_id: parsed example} over every shard listed in the split's metadata."""
    metadata = read_json(SplitFiles(data_dir, split).metadata_path)
    examples = {}
    for entry in metadata["shards"]:
        for record in read_records(os.path.join(data_dir, entry["shard"]),
                                   metadata["compression"]):
            example = parse_example_numpy(record)
            examples[example["utt_id"]] = example
    return examples
