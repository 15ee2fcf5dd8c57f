"""Synthetic corpora written in the layouts of VoxCeleb1, TIMIT, MUSAN and RIRS_NOISES.

* `generate_voxceleb`: `wav/<speaker>/<session>/<nnnnn>.wav` (16 kHz 16-bit mono),
  `iden_split.txt` over the training speakers, `veri_test.txt` over the test speakers (the
  last `num_test_speakers` speaker ids; disjoint from training), `vox1_meta.csv`.
* `generate_timit`: `TRAIN|TEST/DR<n>/<speaker>/<utt>.{WAV,PHN,WRD,TXT}` with TIMIT-style NIST
  SPHERE audio and TIMIT-61 phone labels from espeak-ng's phoneme events.
* `generate_augmentation`: MUSAN-like `musan/{noise,music,speech}` and RIRS_NOISES-like
  `RIRS_NOISES/simulated_rirs/<size>room/Room<nnn>/Room<nnn>-<m>.wav` with `rir_list`s.

Every speaker is a random espeak-ng voice file (`tfspk.synth.voices`), kept next to the audio
in `voices/<speaker>.voice`. `engine` (`voices.ENGINES`) picks the synthesizer every voice of
a corpus uses: "espeak" (the default; its corpora are byte-identical to those written
before the option existed) or "klatt1".."klatt4"; a non-default engine is in `summary.json`.
The same arguments give the same bytes whatever `num_workers`:
every random draw happens in the parent from seed-derived streams, and each speaker's
utterances are synthesised in a fresh process (`tfspk.synth.workers`). Each generator writes
`summary.json` and returns the same dict.
"""
import csv
import json
import math
import os
import string

import numpy as np
import soundfile
import soxr
import tqdm

from tfspk.audio import float_to_int16, int16_to_float
from tfspk.synth import alignment, espeak, music, noise, rir, sentences, sphere, voices
from tfspk.synth.workers import run_isolated
from tfspk.trials import Trial, write_voxceleb_trials

SAMPLE_RATE = 16000
# Calibrated with benchmarks/synth_baseline_eer.py: per-utterance MFCC mean+std cosine
# baseline EER on 50 speakers x 10 clean utterances is about 15-16% (seeds 0, 1).
DEFAULT_SPREAD = 0.5
_KIND_CODES = {"voxceleb": 1, "timit": 2, "augmentation": 3}
_SESSION_ALPHABET = string.ascii_letters + string.digits + "-_"
_TIMIT_TEST_FRACTION = 168 / 630  # TIMIT's own core+complete test share of speakers


class CorpusArgumentError(ValueError):
    """Arguments that cannot produce a corpus."""


def _rng(seed, kind, *path):
    return np.random.default_rng(np.random.SeedSequence([int(seed), _KIND_CODES[kind], *path]))


def _check(num_speakers, utts_per_speaker, spread, num_workers, min_speakers=1, min_utts=1,
           engine="espeak"):
    try:
        voices.check_engine(engine)  # before any work, as a corpus argument error
    except ValueError as error:
        raise CorpusArgumentError(str(error)) from None
    if num_speakers < min_speakers:
        raise CorpusArgumentError(f"num_speakers must be >= {min_speakers}, got {num_speakers}")
    if utts_per_speaker < min_utts:
        raise CorpusArgumentError(f"utts_per_speaker must be >= {min_utts}, "
                                  f"got {utts_per_speaker}")
    if spread < 0:
        raise CorpusArgumentError(f"spread must be >= 0, got {spread}")
    if num_workers < 1:
        raise CorpusArgumentError(f"num_workers must be >= 1, got {num_workers}")


def _to_16k(samples_22k):
    """int16 at 22,050 Hz -> float32 at 16 kHz (soxr, high quality)."""
    return soxr.resample(int16_to_float(samples_22k), espeak.ESPEAK_SAMPLE_RATE, SAMPLE_RATE)


def _to_int16(samples):
    return float_to_int16(samples)


def _write_wav(path, samples):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, _to_int16(samples), SAMPLE_RATE, subtype="PCM_16")


def _start_speaker(job):
    """Engine of this (fresh) process, seeded and set to the job's voice."""
    engine = espeak.get_engine()
    engine.set_rand_seed(job["rand_seed"])
    os.makedirs(os.path.dirname(job["voice_path"]), exist_ok=True)
    engine.set_voice_file(job["voice"].write(job["voice_path"]))
    return engine


def _synthesize(engine, text, jitter):
    return engine.synthesize(text, rate_wpm=jitter.rate_wpm, pitch=jitter.pitch,
                             pitch_range=jitter.pitch_range)


def _run(function, jobs, num_workers, progress, description):
    results = []
    for result in tqdm.tqdm(run_isolated(function, jobs, num_workers), total=len(jobs),
                            desc=description, disable=not progress, unit="job"):
        results.append(result)
    return results


def _count_files(directory):
    return sum(len(files) for _, _, files in os.walk(directory))


def _finish(output_dir, summary):
    summary["files"] = _count_files(output_dir) + 1  # and summary.json
    with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return summary


def _with_engine(engine, summary):
    """The summary, naming a non-default engine (espeak corpora keep their old bytes)."""
    return summary if engine == "espeak" else {**summary, "engine": engine}


def _speaker_plan(seed, kind, index, spread, num_texts, **voice_args):
    rng = _rng(seed, kind, 1, index)
    voice = voices.random_voice(rng, spread, **voice_args)
    texts = sentences.random_sentences(rng, num_texts)
    jitters = [voices.random_jitter(rng) for _ in range(num_texts)]
    rand_seed = int(rng.integers(2 ** 31))
    return rng, voice, texts, jitters, rand_seed


# ----------------------------------------------------------------------------- VoxCeleb


def _session_id(rng):
    first = rng.choice(list(string.ascii_letters + string.digits))
    return first + "".join(rng.choice(list(_SESSION_ALPHABET), size=10))


def _apply_channel(samples, channel):
    """A session's channel: first-order spectral tilt and a gain."""
    tilt, gain_db = channel
    filtered = samples + tilt * np.concatenate([[0.0], samples[:-1]])
    return filtered / (1.0 + abs(tilt)) * 10 ** (gain_db / 20)


def _voxceleb_speaker(job):
    engine = _start_speaker(job)
    lengths = []
    for relative_path, text, jitter, channel in job["utterances"]:
        synthesis = _synthesize(engine, text, jitter)
        audio = _apply_channel(_to_16k(synthesis.samples), channel)
        _write_wav(os.path.join(job["output_dir"], "wav", relative_path), audio)
        lengths.append(len(audio))
    return lengths


def generate_voxceleb(output_dir, num_speakers, utts_per_speaker, seed=0,
                      spread=DEFAULT_SPREAD, num_test_speakers=None, sessions_per_speaker=3,
                      num_workers=1, progress=False, engine="espeak"):
    """Write a VoxCeleb1-layout corpus; returns the summary dict.

    Utterances are split into `sessions_per_speaker` (at most one per utterance) contiguous
    sessions, each with its own channel (spectral tilt and gain).
    The last `num_test_speakers` speakers (default: a fifth, at least 2) form the
    verification test set (`veri_test.txt`: for every test utterance one target trial,
    preferring another session, and one non-target trial). `iden_split.txt` covers the other
    (training) speakers: per speaker the last tenth of utterances is 3 (test), the tenth
    before it 2 (validation), the rest 1 (train).
    """
    _check(num_speakers, utts_per_speaker, spread, num_workers, min_speakers=3, min_utts=2,
           engine=engine)
    if num_test_speakers is None:
        num_test_speakers = max(2, num_speakers // 5)
    if not 2 <= num_test_speakers <= num_speakers - 1:
        raise CorpusArgumentError(f"num_test_speakers must be in [2, num_speakers - 1], got "
                                  f"{num_test_speakers} with {num_speakers} speakers")
    if sessions_per_speaker < 1:
        raise CorpusArgumentError(f"sessions_per_speaker must be >= 1, got "
                                  f"{sessions_per_speaker}")
    sessions_per_speaker = min(sessions_per_speaker, utts_per_speaker)  # none left empty
    corpus_rng = _rng(seed, "voxceleb", 0)
    speakers = [f"id{10001 + index}" for index in range(num_speakers)]
    test_speakers = set(speakers[num_speakers - num_test_speakers:])
    jobs, voices_of = [], {}
    for index, speaker in enumerate(speakers):
        rng, voice, texts, jitters, rand_seed = _speaker_plan(
            seed, "voxceleb", index, spread, utts_per_speaker, engine=engine)
        voices_of[speaker] = voice
        sessions = [_session_id(corpus_rng) for _ in range(sessions_per_speaker)]
        channels = [(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-6.0, 3.0)))
                    for _ in sessions]
        utterances = []
        for number in range(utts_per_speaker):
            session = number * sessions_per_speaker // utts_per_speaker  # contiguous blocks
            count = sum(1 for item in utterances if item[0].split("/")[1] == sessions[session])
            utterances.append((f"{speaker}/{sessions[session]}/{count + 1:05d}.wav",
                               texts[number], jitters[number], channels[session]))
        jobs.append({"output_dir": output_dir, "voice": voice, "rand_seed": rand_seed,
                     "voice_path": os.path.join(output_dir, "voices", f"{speaker}.voice"),
                     "utterances": utterances})
    os.makedirs(output_dir, exist_ok=True)
    lengths = _run(_voxceleb_speaker, jobs, num_workers, progress, "voxceleb speakers")

    paths = {speaker: [item[0] for item in job["utterances"]]
             for speaker, job in zip(speakers, jobs)}
    with open(os.path.join(output_dir, "iden_split.txt"), "w", encoding="utf-8") as handle:
        for speaker in speakers:
            if speaker in test_speakers:
                continue
            held_out = max(1, utts_per_speaker // 10) if utts_per_speaker >= 3 else 0
            for number, path in enumerate(paths[speaker]):
                split = (3 if number >= utts_per_speaker - held_out else
                         2 if number >= utts_per_speaker - 2 * held_out else 1)
                handle.write(f"{split} {path}\n")
    trials = _verification_trials(corpus_rng, [s for s in speakers if s in test_speakers], paths)
    write_voxceleb_trials(os.path.join(output_dir, "veri_test.txt"),
                          [Trial(label, enroll, test) for label, enroll, test in trials])
    with open(os.path.join(output_dir, "vox1_meta.csv"), "w", encoding="utf-8",
              newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"])
        for speaker in speakers:
            voice = voices_of[speaker]
            writer.writerow([speaker, f"synth_{speaker}", voice.sex.lower(), voice.accent,
                             "test" if speaker in test_speakers else "dev"])
    num_samples = sum(sum(speaker_lengths) for speaker_lengths in lengths)
    return _finish(output_dir, _with_engine(engine, {
        "kind": "voxceleb", "seed": seed, "spread": spread, "sample_rate": SAMPLE_RATE,
        "speakers": num_speakers, "test_speakers": num_test_speakers,
        "utterances": num_speakers * utts_per_speaker, "trials": len(trials),
        "hours": num_samples / SAMPLE_RATE / 3600,
    }))


def _verification_trials(rng, test_speakers, paths):
    trials = []
    for speaker in test_speakers:
        for enroll in paths[speaker]:
            session = enroll.split("/")[1]
            others = [path for path in paths[speaker] if path != enroll]
            other_sessions = [path for path in others if path.split("/")[1] != session]
            target = (other_sessions or others)[rng.integers(len(other_sessions or others))]
            impostors = [other for other in test_speakers if other != speaker]
            impostor = impostors[rng.integers(len(impostors))]
            nontarget = paths[impostor][rng.integers(len(paths[impostor]))]
            trials += [(1, enroll, target), (0, enroll, nontarget)]
    return trials


# ----------------------------------------------------------------------------- TIMIT


def _pad(samples, phones, words, lead, trail):
    """Add `lead` / `trail` samples of digital silence, extending (or adding) the h#."""
    padded = np.concatenate([np.zeros(lead, np.int16), samples, np.zeros(trail, np.int16)])
    shifted = [segment._replace(start=segment.start + lead, end=segment.end + lead)
               for segment in phones]
    if shifted[0].label == "h#":
        shifted[0] = shifted[0]._replace(start=0)
    elif lead:
        shifted.insert(0, alignment.Segment(0, lead, "h#"))
    if shifted[-1].label == "h#":
        shifted[-1] = shifted[-1]._replace(end=len(padded))
    elif trail:
        shifted.append(alignment.Segment(shifted[-1].end, len(padded), "h#"))
    words = [word._replace(start=word.start + lead, end=word.end + lead) for word in words]
    return padded, shifted, words


def _timit_speaker(job):
    engine = _start_speaker(job)
    directory = os.path.join(job["output_dir"], job["speaker_dir"])
    os.makedirs(directory, exist_ok=True)
    lengths = []
    for name, text, jitter, lead_ms, trail_ms in job["utterances"]:
        synthesis = _synthesize(engine, text, jitter)
        phones, words = alignment.align(synthesis, rhotic=job["voice"].rhotic)
        rate = espeak.ESPEAK_SAMPLE_RATE
        samples, phones, words = _pad(synthesis.samples, phones, words,
                                      lead_ms * rate // 1000, trail_ms * rate // 1000)
        audio = _to_int16(_to_16k(samples))
        phones = alignment.to_rate(phones, len(samples), len(audio))
        words = alignment.to_rate(words, len(samples), len(audio))
        base = os.path.join(directory, name)
        utterance_id = f"{job['speaker'].lower()}_{name.lower()}"
        sphere.write_sphere(base + ".WAV", audio, SAMPLE_RATE, utterance_id)
        with open(base + ".PHN", "w", encoding="ascii") as handle:
            handle.writelines(f"{p.start} {p.end} {p.label}\n" for p in phones)
        with open(base + ".WRD", "w", encoding="ascii") as handle:
            handle.writelines(f"{w.start} {w.end} {w.word}\n" for w in words)
        with open(base + ".TXT", "w", encoding="ascii") as handle:
            handle.write(f"0 {len(audio)} {text}\n")
        lengths.append(len(audio))
    return lengths


def _timit_speaker_ids(rng, sexes):
    ids, seen = [], set()
    for sex in sexes:
        while True:
            initials = "".join(rng.choice(list(string.ascii_uppercase), size=3))
            digit = next((d for d in range(10) if f"{sex}{initials}{d}" not in seen), None)
            if digit is not None:
                break
        ids.append(f"{sex}{initials}{digit}")
        seen.add(ids[-1])
    return ids


def generate_timit(output_dir, num_speakers, utts_per_speaker=10, seed=0,
                   spread=DEFAULT_SPREAD, num_workers=1, progress=False, engine="espeak"):
    """Write a TIMIT-layout corpus; returns the summary dict.

    Each speaker reads SA1 and SA2 (TIMIT's shared sentences), then SX sentences (each read
    by up to 7 speakers, like TIMIT) and SI sentences (unique) in TIMIT's 5:3 ratio. The
    dialect region is the accent: DR1 en-us ... DR8 en-us-nyc (`voices.ACCENTS` order). The
    last ~27% of speakers (TIMIT's share) form TEST. Audio gets 50-200 ms of silence at both
    ends, labelled h#.
    """
    _check(num_speakers, utts_per_speaker, spread, num_workers, engine=engine)
    corpus_rng = _rng(seed, "timit", 0)
    num_sa = min(2, utts_per_speaker)
    num_sx = int(round((utts_per_speaker - num_sa) * 5 / 8))
    num_si = utts_per_speaker - num_sa - num_sx
    sx_pool_size = max(num_sx, math.ceil(num_speakers * num_sx / 7))
    sx_texts = sentences.random_sentences(corpus_rng, sx_pool_size)
    num_test = int(round(num_speakers * _TIMIT_TEST_FRACTION)) if num_speakers > 1 else 0
    num_test = min(max(num_test, 1 if num_speakers > 1 else 0), num_speakers - 1)
    plans = [_speaker_plan(seed, "timit", index, spread, num_si + num_sa + num_sx,
                           engine=engine)
             for index in range(num_speakers)]
    speaker_ids = _timit_speaker_ids(corpus_rng, [plan[1].sex for plan in plans])
    accents = list(voices.ACCENTS)
    jobs, si_number = [], max(453, 3 + sx_pool_size)
    for index, (rng, voice, texts, jitters, rand_seed) in enumerate(plans):
        names = [f"SA{n + 1}" for n in range(num_sa)]
        chosen = list(sentences.SHARED_SENTENCES[:num_sa])
        for j in range(num_sx):
            pool_index = (index * num_sx + j) % sx_pool_size
            names.append(f"SX{3 + pool_index}")
            chosen.append(sx_texts[pool_index])
        for j in range(num_si):
            names.append(f"SI{si_number}")
            chosen.append(texts[j])
            si_number += 1
        split = "TEST" if index >= num_speakers - num_test else "TRAIN"
        speaker = speaker_ids[index]
        utterances = [(name, text, jitter, int(rng.integers(50, 201)), int(rng.integers(50, 201)))
                      for name, text, jitter in zip(names, chosen, jitters)]
        jobs.append({"output_dir": output_dir, "voice": voice, "rand_seed": rand_seed,
                     "voice_path": os.path.join(output_dir, "voices", f"{speaker.lower()}.voice"),
                     "speaker": speaker,
                     "speaker_dir": f"{split}/DR{accents.index(voice.accent) + 1}/{speaker}",
                     "utterances": utterances})
    os.makedirs(output_dir, exist_ok=True)
    lengths = _run(_timit_speaker, jobs, num_workers, progress, "timit speakers")
    num_samples = sum(sum(speaker_lengths) for speaker_lengths in lengths)
    return _finish(output_dir, _with_engine(engine, {
        "kind": "timit", "seed": seed, "spread": spread, "sample_rate": SAMPLE_RATE,
        "speakers": num_speakers, "test_speakers": num_test,
        "utterances": num_speakers * utts_per_speaker,
        "hours": num_samples / SAMPLE_RATE / 3600,
    }))


# ----------------------------------------------------------------------------- augmentation


def _babble_speaker(job):
    engine = _start_speaker(job)
    pieces = []
    for text, jitter, pause_ms in job["utterances"]:
        pieces.append(_synthesize(engine, text, jitter).samples)
        pieces.append(np.zeros(pause_ms * espeak.ESPEAK_SAMPLE_RATE // 1000, np.int16))
    audio = _to_16k(np.concatenate(pieces))
    _write_wav(job["path"], audio)
    return len(audio)


def _noise_file(job):
    kind, audio = noise.random_noise(np.random.default_rng(job["seed"]), job["seconds"])
    _write_wav(job["path"], audio)
    return len(audio)


def _music_file(job):
    audio = music.random_music(np.random.default_rng(job["seed"]), job["seconds"])
    _write_wav(job["path"], audio)
    return len(audio)


def _room_rirs(job):
    rng = np.random.default_rng(job["seed"])
    room = rir.random_room(rng, job["kind"])
    info = []
    for path in job["paths"]:
        source, receiver = rir.random_position(rng, room), rir.random_position(rng, room)
        response = rir.simulate_rir(room, source, receiver, rng)
        _write_wav(path, 0.5 * response / np.max(np.abs(response)))
        info.append((len(response), rir.direct_index(source, receiver), room.rt60, room.size))
    return info


def generate_augmentation(output_dir, num_speakers, utts_per_speaker, seed=0,
                          spread=DEFAULT_SPREAD, num_noise=20, num_music=10, rooms_per_size=5,
                          rirs_per_room=4, num_workers=1, progress=False, engine="espeak"):
    """Write MUSAN-like and RIRS_NOISES-like augmentation data; returns the summary dict.

    `musan/speech/synth/speech-synth-<nnnn>.wav`: one babble source per speaker (a speaker
    pool drawn from this kind's own seed stream, so distinct from the voxceleb/timit
    speakers), `utts_per_speaker` sentences with 0.2-0.8 s pauses.
    `musan/noise/free-sound/noise-free-sound-<nnnn>.wav`: 5-15 s synthetic noises.
    `musan/music/synth/music-synth-<nnnn>.wav`: 10-30 s synthetic music.
    `RIRS_NOISES/simulated_rirs/<size>/Room<nnn>/Room<nnn>-<mmmmm>.wav` (peak 0.5, direct
    path at its first non-zero sample), a `rir_list` per size in the real format
    (`--rir-id ... --room-id ... <path>`) and `rir_info.tsv` (length, direct index, RT60,
    room size).
    """
    _check(num_speakers, utts_per_speaker, spread, num_workers, engine=engine)
    for name, value in (("num_noise", num_noise), ("num_music", num_music),
                        ("rooms_per_size", rooms_per_size), ("rirs_per_room", rirs_per_room)):
        if value < 0:
            raise CorpusArgumentError(f"{name} must be >= 0, got {value}")
    corpus_rng = _rng(seed, "augmentation", 0)
    musan = os.path.join(output_dir, "musan")
    babble_jobs = []
    for index in range(num_speakers):
        rng, voice, texts, jitters, rand_seed = _speaker_plan(
            seed, "augmentation", index, spread, utts_per_speaker, engine=engine)
        babble_jobs.append({
            "voice": voice, "rand_seed": rand_seed,
            "voice_path": os.path.join(output_dir, "voices", f"babble{index:04d}.voice"),
            "path": os.path.join(musan, "speech", "synth", f"speech-synth-{index:04d}.wav"),
            "utterances": [(text, jitter, int(rng.integers(200, 801)))
                           for text, jitter in zip(texts, jitters)]})
    noise_jobs = [{"seed": int(corpus_rng.integers(2 ** 63)),
                   "seconds": float(corpus_rng.uniform(5.0, 15.0)),
                   "path": os.path.join(musan, "noise", "free-sound",
                                        f"noise-free-sound-{index:04d}.wav")}
                  for index in range(num_noise)]
    music_jobs = [{"seed": int(corpus_rng.integers(2 ** 63)),
                   "seconds": float(corpus_rng.uniform(10.0, 30.0)),
                   "path": os.path.join(musan, "music", "synth", f"music-synth-{index:04d}.wav")}
                  for index in range(num_music)]
    rirs_root = os.path.join(output_dir, "RIRS_NOISES", "simulated_rirs")
    room_jobs = []
    for kind in rir.ROOM_KINDS:
        for room in range(1, rooms_per_size + 1):
            room_jobs.append({
                "kind": kind, "seed": int(corpus_rng.integers(2 ** 63)), "room": room,
                "paths": [os.path.join(rirs_root, kind, f"Room{room:03d}",
                                       f"Room{room:03d}-{number:05d}.wav")
                          for number in range(1, rirs_per_room + 1)]})
    os.makedirs(output_dir, exist_ok=True)
    speech = _run(_babble_speaker, babble_jobs, num_workers, progress, "babble speakers")
    noises = _run(_noise_file, noise_jobs, num_workers, progress, "noises")
    pieces = _run(_music_file, music_jobs, num_workers, progress, "music")
    rooms = _run(_room_rirs, room_jobs, num_workers, progress, "rooms")
    with open(os.path.join(rirs_root if room_jobs else output_dir, "rir_info.tsv"), "w",
              encoding="utf-8") as info_file:
        info_file.write("rir_id\tnum_samples\tdirect_index\trt60\troom_size_m\n")
        for kind in rir.ROOM_KINDS:
            kind_jobs = [(job, info) for job, info in zip(room_jobs, rooms) if job["kind"] == kind]
            if not kind_jobs:
                continue
            with open(os.path.join(rirs_root, kind, "rir_list"), "w", encoding="utf-8") as listing:
                for job, room_info in kind_jobs:
                    room_id = f"{kind}-Room{job['room']:03d}"
                    for path, (length, direct, rt60, size) in zip(job["paths"], room_info):
                        rir_id = f"{room_id}-{os.path.basename(path)[8:-4]}"
                        relative = os.path.relpath(path, output_dir)
                        listing.write(f"--rir-id {rir_id} --room-id {room_id} {relative}\n")
                        info_file.write(f"{rir_id}\t{length}\t{direct}\t{rt60:.3f}\t"
                                        f"{'x'.join(f'{side:.2f}' for side in size)}\n")
    num_samples = sum(speech) + sum(noises) + sum(pieces)
    num_rirs = sum(len(info) for info in rooms)
    return _finish(output_dir, _with_engine(engine, {
        "kind": "augmentation", "seed": seed, "spread": spread, "sample_rate": SAMPLE_RATE,
        "speakers": num_speakers, "utterances": num_speakers * utts_per_speaker,
        "speech_files": len(speech), "noise_files": len(noises), "music_files": len(pieces),
        "rirs": num_rirs, "hours": num_samples / SAMPLE_RATE / 3600,
    }))
