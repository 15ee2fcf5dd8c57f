"""RIRS_NOISES reader (OpenSLR 28): room impulse responses for reverberation.

Layout: ``simulated_rirs/<small|medium|large>room/Room<nnn>/Room<nnn>-<nnnnn>.wav``, each
room-size folder with a Kaldi ``rir_list``; and ``real_rirs_isotropic_noises/*.wav``, which
mixes real RIRs with isotropic noise recordings, also with a ``rir_list``. A ``rir_list``
line is ``--rir-id <id> --room-id <room> [--receiver-position-id .. --source-position-id ..
--rt-60|--rt60 <s> --drr <dB> --cte <dB> --probability <p>] <location>``, the location relative to the folder above
``RIRS_NOISES``. Where a ``rir_list`` exists it decides which files are RIRs; without one,
simulated RIRs are found by name and real files whose name contains ``noise`` are skipped.
A location may also be Kaldi's ``sox <file> -t wav - remix <n> |`` pipe that picks one
channel of a multi-channel RIR; the channel goes to ``meta["channel"]`` (0-based).
"""
from __future__ import annotations

import glob
import math
import os
import re
from typing import Optional

from tfspk.corpora.records import CorpusFormatError, Utterance, check_unique_ids, read_table

SIMULATED = "simulated_rirs"
REAL = "real_rirs_isotropic_noises"
_SOX_REMIX = re.compile(r"^sox\s+(\S+)\s+-t\s+wav\s+-\s+remix\s+(\d+)\s*\|$")
# Kaldi's reverberate_data_dir.py writes --rt60, --cte and --probability; OpenSLR 28's
# own lists spell it --rt-60. Both spellings land in one field.
_FLOAT_OPTIONS = {"--rt-60": "rt60", "--rt60": "rt60", "--drr": "drr", "--cte": "cte",
                  "--probability": "probability"}
_TEXT_OPTIONS = {"--rir-id": "rir_id", "--room-id": "room_id",
                 "--receiver-position-id": "receiver_position_id",
                 "--source-position-id": "source_position_id"}


def read_rirs(root: os.PathLike | str) -> list[Utterance]:
    """Reads the RIRs of RIRS_NOISES, simulated first, then real.

    ``root`` is the ``RIRS_NOISES`` folder or its parent. Each utterance has the RIR id as
    ``utt_id``, the room id as ``speaker`` (RIRs of one room are alike, so splits should
    keep rooms apart), and ``meta = {"kind": "simulated"|"real", "room_id": ..., ...}`` with
    the ``rir_list`` options that are given (``rt60``, ``drr``, ``cte`` and ``probability``
    as floats).
    """
    root = os.fspath(root)
    if os.path.isdir(os.path.join(root, "RIRS_NOISES")):
        root = os.path.join(root, "RIRS_NOISES")
    if not os.path.isdir(root):
        raise CorpusFormatError("RIRS_NOISES folder not found", root)
    utterances = []
    simulated = os.path.join(root, SIMULATED)
    if os.path.isdir(simulated):
        for room_size in sorted(os.listdir(simulated)):
            folder = os.path.join(simulated, room_size)
            if os.path.isdir(folder):
                utterances.extend(_read_folder(root, folder, "simulated", room_size))
    real = os.path.join(root, REAL)
    if os.path.isdir(real):
        utterances.extend(_read_folder(root, real, "real", None))
    if not utterances:
        raise CorpusFormatError(f"no RIRs found (expected {SIMULATED}/*/Room*/Room*-*.wav "
                                f"or {REAL}/*.wav)", root)
    check_unique_ids(utterances, root)
    return utterances


def _read_folder(root: str, folder: str, kind: str,
                 room_size: Optional[str]) -> list[Utterance]:
    rir_list = os.path.join(folder, "rir_list")
    if os.path.isfile(rir_list):
        return [_utterance_from_line(root, rir_list, number, fields, kind)
                for number, fields in read_table(rir_list, 5, math.inf)]
    utterances = []
    if kind == "simulated":
        for path in sorted(glob.glob(os.path.join(folder, "Room*", "Room*-*.wav"))):
            room = os.path.basename(os.path.dirname(path))
            room_id = f"{room_size}-{room}"
            rir_id = f"{room_size}-{os.path.splitext(os.path.basename(path))[0]}"
            utterances.append(Utterance(rir_id, path, room_id,
                                        meta={"kind": kind, "room_id": room_id}))
    else:
        for path in sorted(glob.glob(os.path.join(folder, "*.wav"))):
            stem = os.path.splitext(os.path.basename(path))[0]
            if "noise" not in stem.lower():
                utterances.append(Utterance(stem, path, stem,
                                            meta={"kind": kind, "room_id": stem}))
    return utterances


def _utterance_from_line(root: str, rir_list: str, number: int, fields: list[str],
                         kind: str) -> Utterance:
    meta: dict = {"kind": kind}
    position = 0
    while position < len(fields) and fields[position].startswith("--"):
        option = fields[position]
        if position + 1 >= len(fields):
            raise CorpusFormatError(f"option {option} has no value", rir_list, number)
        value = fields[position + 1]
        if option in _TEXT_OPTIONS:
            meta[_TEXT_OPTIONS[option]] = value
        elif option in _FLOAT_OPTIONS:
            try:
                meta[_FLOAT_OPTIONS[option]] = float(value)
            except ValueError:
                raise CorpusFormatError(f"{option} must be a number, got {value!r}",
                                        rir_list, number) from None
        else:
            raise CorpusFormatError(f"unknown option {option}", rir_list, number)
        position += 2
    for required in ("rir_id", "room_id"):
        if required not in meta:
            raise CorpusFormatError(f"missing --{required.replace('_', '-')}", rir_list,
                                    number)
    location = " ".join(fields[position:])
    piped = _SOX_REMIX.match(location)
    if piped:
        location, meta["channel"] = piped.group(1), int(piped.group(2)) - 1
    elif not location or location.endswith("|") or " " in location:
        raise CorpusFormatError(f"location must be a plain path (or a sox remix pipe), got "
                                f"{location!r}", rir_list, number)
    path = _resolve(root, location)
    if path is None:
        raise CorpusFormatError(f"RIR file {location!r} not found", rir_list, number)
    rir_id = meta.pop("rir_id")
    return Utterance(rir_id, path, meta["room_id"], meta=meta)


def _resolve(root: str, location: str) -> Optional[str]:
    """Finds a rir_list location: relative to the folder above RIRS_NOISES, or to
    RIRS_NOISES itself with or without the leading ``RIRS_NOISES/`` (renamed copies)."""
    if os.path.isabs(location):
        candidates = [location]
    else:
        candidates = [os.path.join(os.path.dirname(root), location),
                      os.path.join(root, location),
                      os.path.join(root, location.partition("/")[2])]
    return next((os.path.normpath(p) for p in candidates if os.path.isfile(p)), None)
