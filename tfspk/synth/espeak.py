"""In-process espeak-ng through ctypes: 22,050 Hz int16 audio plus exact phoneme positions.

The `espeakng-loader` wheel ships `libespeak-ng.so` and its `espeak-ng-data` directory; this
module binds the few C entry points needed for synchronous synthesis with phoneme events.

espeak-ng keeps process-global state (the library is one global engine), and part of that
state (waveform-generator phase, noise generators) carries over from one utterance to the
next: a repeated call inside one process gives slightly different bytes, while the same
sequence of calls in a fresh process gives identical bytes. Re-initialising does not reset
it. Deterministic corpora therefore run each job (one speaker's utterances, in a fixed order)
in a freshly forked process whose parent never synthesised anything; see
`tfspk.synth.corpus.run_isolated`.
"""
import ctypes
import dataclasses
import os
import re
import shutil
import tempfile
import threading

import numpy as np

ESPEAK_SAMPLE_RATE = 22050

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_EE_OK = 0
_PHONEME_SEPARATOR = ord("_")  # between phonemes in espeak_TextToPhonemes output
# A written word, as `tfspk.synth.sentences.words_of` counts them.
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_MAX_VOICE_PATH = 40  # espeak-ng fails on voice-file paths of about 60 characters


def _short_temp_root():
    for candidate in ("/tmp", tempfile.gettempdir()):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            return candidate
    return tempfile.gettempdir()


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, initialised or asked to synthesise."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class PhonemeEvent:
    """A phone starts at `sample` (22,050 Hz); `mnemonic` is espeak's name, stress marks kept."""
    mnemonic: str
    sample: int


@dataclasses.dataclass(frozen=True)
class WordEvent:
    """A word group starts at `sample`; it is `text[text_start:text_start + length]`.

    espeak-ng sends one event per phonological word, which may span several written words
    ("there were"); `parts` holds the written words from this event to the next one, each
    with its number of phonemes said alone (0 for the last, which takes the rest).
    """
    text_start: int
    length: int
    sample: int
    parts: tuple = ()


@dataclasses.dataclass(frozen=True)
class Synthesis:
    """One synthesised utterance at `ESPEAK_SAMPLE_RATE`."""
    text: str
    samples: np.ndarray  # int16
    phonemes: tuple  # PhonemeEvent, in time order; the last one marks the end
    words: tuple  # WordEvent, in time order

    @property
    def sample_rate(self):
        return ESPEAK_SAMPLE_RATE


def data_path():
    """The `espeak-ng-data` directory shipped by `espeakng-loader`."""
    try:
        import espeakng_loader
    except ImportError as error:
        raise EspeakError("espeak-ng needs the `espeakng-loader` package: "
                          "pip install 'tfspk[demo]'") from error
    return espeakng_loader.get_data_path()


def _load_library():
    import espeakng_loader  # data_path() reported a missing package already
    data_path()
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByFile.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                          ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    return lib


class Engine:
    """The process's espeak-ng engine. espeak-ng is a process-wide singleton: use `get_engine()`.

    Not thread-safe across threads of one process; a lock serialises calls.
    """

    def __init__(self):
        self._lib = _load_library()
        self._lock = threading.Lock()
        self._chunks = []
        self._phonemes = []
        self._words = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SynthCallback(self._collect)
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path().encode(),
                                           _INITIALIZE_PHONEME_EVENTS)
        if rate != ESPEAK_SAMPLE_RATE:
            raise EspeakError(f"espeak_Initialize returned {rate}, expected a "
                              f"{ESPEAK_SAMPLE_RATE} Hz engine (data: {data_path()})")
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, num_samples, events):
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                self._phonemes.append(PhonemeEvent(event.id.string.decode("ascii"),
                                                   event.sample))
            elif event.type == _EVENT_WORD:
                # text_position counts characters from 1.
                self._words.append(WordEvent(event.text_position - 1, event.length,
                                             event.sample))
            i += 1
        return 0

    def set_voice_file(self, path):
        """Select a voice from a voice file (see `tfspk.synth.voices`).

        espeak-ng lower-cases the path it is given and truncates long ones, so the file is
        staged under a short lower-case temporary path for the call and removed after it.
        """
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            raise EspeakError(f"{path}: voice file not found")
        staging = tempfile.mkdtemp(prefix="tfspk", dir=_short_temp_root())
        staged = os.path.join(staging, "voice")
        if len(staged) > _MAX_VOICE_PATH or staged != staged.lower():
            shutil.rmtree(staging, ignore_errors=True)
            raise EspeakError(f"{path}: no short lower-case temporary directory to stage the "
                              f"voice file for espeak-ng (tried {staged!r}); set TMPDIR")
        try:
            shutil.copyfile(path, staged)
            with self._lock:
                status = self._lib.espeak_SetVoiceByFile(staged.encode())
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if status != _EE_OK:
            raise EspeakError(f"{path}: espeak_SetVoiceByFile failed with status {status}")

    def set_voice_name(self, name):
        """Select a stock voice by name, e.g. "en-us" or "en-us+m3" ("en-gb" is not a name)."""
        with self._lock:
            status = self._lib.espeak_SetVoiceByName(name.encode())
        if status != _EE_OK:
            raise EspeakError(f"espeak_SetVoiceByName({name!r}) failed with status {status}")

    def set_rand_seed(self, seed):
        """Seed espeak-ng's noise generator (breath, frication)."""
        with self._lock:
            self._lib.espeak_ng_SetRandSeed(int(seed) % (2 ** 31))

    def synthesize(self, text, rate_wpm=None, pitch=None, pitch_range=None):
        """Synthesise `text`; rate in words per minute, pitch and range in espeak's 0..100."""
        if not text or not text.strip():
            raise EspeakError("cannot synthesise empty text")
        with self._lock:
            for parameter, value in ((_PARAM_RATE, rate_wpm), (_PARAM_PITCH, pitch),
                                     (_PARAM_RANGE, pitch_range)):
                if value is not None:
                    self._lib.espeak_SetParameter(parameter, int(round(value)), 0)
            self._chunks, self._phonemes, self._words = [], [], []
            encoded = text.encode("utf-8") + b"\0"
            status = self._lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0,
                                            _CHARS_UTF8, None, None)
            if status != _EE_OK:
                raise EspeakError(f"espeak_Synth failed with status {status} for {text!r}")
            samples = (np.concatenate(self._chunks) if self._chunks
                       else np.zeros(0, np.int16))
            phonemes, words = tuple(self._phonemes), self._words
        return Synthesis(text, samples, phonemes, self._split_groups(text, words))

    def phonemes_of(self, text):
        """espeak-ng's phoneme mnemonics of `text` (no audio), one list per phonological word."""
        buffer = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        pointer = ctypes.c_char_p(ctypes.addressof(buffer))
        words = []
        with self._lock:
            while pointer.value:
                result = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8,
                                                         _PHONEME_SEPARATOR << 8)
                words += [word.split(chr(_PHONEME_SEPARATOR))
                          for word in (result or b"").decode("utf-8").split()]
        return words

    def _split_groups(self, text, words):
        ordered = sorted(words, key=lambda word: word.text_start)
        result = []
        for index, word in enumerate(ordered):
            end = ordered[index + 1].text_start if index + 1 < len(ordered) else len(text)
            written = [match.group(0) for match in _WORD.finditer(text, word.text_start, end)]
            # The last written word takes the remaining phones: no need to count them.
            parts = tuple((item, sum(len(group) for group in self.phonemes_of(item))
                           if number < len(written) - 1 else 0)
                          for number, item in enumerate(written))
            result.append(dataclasses.replace(word, parts=parts))
        return tuple(sorted(result, key=lambda word: word.sample))


_engine = None
_engine_pid = None


def get_engine():
    """The engine of this process (created on first use, again after a fork)."""
    global _engine, _engine_pid
    if _engine is None or _engine_pid != os.getpid():
        _engine = Engine()
        _engine_pid = os.getpid()
    return _engine
