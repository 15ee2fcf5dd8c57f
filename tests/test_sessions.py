"""Recording sessions (tfspk.sessions) against closed forms, on real speech where the
stage is signal-dependent."""
import json
import math

import numpy as np
import pytest
import scipy.signal

from tfspk import audio
from tfspk.sessions import (Biquad, RoomSetting, SessionChannel, SessionError, add_noise,
                            apply_session, codec_round_trip, random_session,
                            telephone_band)

RATE = 16000


def _sine(frequency, seconds=1.0, amplitude=0.1):
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _rms_db(x):
    return 10 * np.log10(np.mean(np.square(np.asarray(x, np.float64))))


def _steady_gain_db(channel, frequency):
    """Output/input level of a sine after the filter transient (first 0.25 s dropped)."""
    x = _sine(frequency)
    y = apply_session(x, RATE, channel)
    skip = RATE // 4
    return _rms_db(y[skip:-skip]) - _rms_db(x[skip:-skip])


@pytest.fixture(scope="module")
def speech(librispeech_dir):
    waveform, _ = audio.load_audio(librispeech_dir / "103-1240-0000.flac", RATE)
    return waveform[:3 * RATE]


@pytest.mark.parametrize("gain_db,q", [(6.0, 1.0), (-9.0, 2.5), (4.0, 0.7)])
def test_peaking_eq_gain_at_centre_matches_design(gain_db, q):
    channel = SessionChannel("s", 0, eq=(Biquad("peaking", 1000.0, gain_db, q),))
    # A sine at the centre frequency, through the real filter: the cookbook peaking
    # section has exactly gain_db there (and unit gain at DC and Nyquist).
    assert _steady_gain_db(channel, 1000.0) == pytest.approx(gain_db, abs=0.05)
    sos = channel.eq[0].sos(RATE)
    _, response = scipy.signal.sosfreqz(sos[None], worN=[0.0, 1000.0, RATE / 2], fs=RATE)
    np.testing.assert_allclose(20 * np.log10(np.abs(response)), [0.0, gain_db, 0.0],
                               atol=1e-9)


def test_shelves_reach_their_gain_at_the_band_edge_and_half_at_the_corner():
    for kind, edge in (("low_shelf", 0.0), ("high_shelf", RATE / 2)):
        sos = Biquad(kind, 1500.0, -8.0).sos(RATE)
        other = RATE / 2 if edge == 0.0 else 0.0
        _, response = scipy.signal.sosfreqz(sos[None], worN=[edge, 1500.0, other], fs=RATE)
        # Cookbook shelves: full gain on the shelf, half the gain (dB) at the corner.
        np.testing.assert_allclose(20 * np.log10(np.abs(response)), [-8.0, -4.0, 0.0],
                                   atol=1e-9)


def test_telephone_band_passes_speech_band_and_attenuates_outside():
    channel = SessionChannel("s", 0, band="telephone")
    assert abs(_steady_gain_db(channel, 1000.0)) < 1.0
    assert _steady_gain_db(channel, 120.0) < -15.0   # below 300 Hz
    assert _steady_gain_db(channel, 5000.0) < -40.0  # above 4 kHz: gone in the 8 kHz trip
    assert _steady_gain_db(channel, 3900.0) < -6.0   # above 3400 Hz
    x = _sine(1000.0)
    assert len(telephone_band(x, RATE)) == len(x)


def test_noise_is_added_at_the_drawn_snr(speech):
    for kind, snr in (("pink", 7.5), ("band", 18.0), ("white", 0.0), ("brown", 25.0)):
        channel = SessionChannel("s", 3, noise_kind=kind, snr_db=snr)
        output = apply_session(speech, RATE, channel)
        noise = output.astype(np.float64) - speech
        measured = _rms_db(speech) - _rms_db(noise)
        assert measured == pytest.approx(snr, abs=0.5), kind
    # The closed form itself is exact.
    rng = np.random.default_rng(0)
    x, n = rng.standard_normal(1000), rng.standard_normal(1000)
    assert _rms_db(x) - _rms_db(add_noise(x, n, 12.0) - x) == pytest.approx(12.0, abs=1e-9)


@pytest.mark.parametrize("codec", ["ogg", "mp3"])
def test_codec_round_trip_keeps_length_alignment_and_correlation(speech, codec):
    for compression in (0.2, 0.9):
        decoded = codec_round_trip(speech, RATE, codec, compression)
        assert decoded.shape == speech.shape
        # Aligned (no encoder delay left) and close to the input.
        assert np.corrcoef(decoded, speech)[0, 1] > 0.95
        lags = range(-40, 41)
        best = max(lags, key=lambda lag: np.dot(np.roll(decoded, -lag)[100:-100],
                                                speech[100:-100]))
        assert best == 0
        assert not np.array_equal(decoded, speech)  # it really was lossy


def test_reverb_keeps_length_and_level_and_adds_a_tail(speech):
    room = RoomSetting((6.0, 4.0, 3.0), 0.6, (1.0, 1.0, 1.5), (4.0, 2.5, 1.2))
    dry = apply_session(speech, RATE, SessionChannel("s", 1))
    wet = apply_session(speech, RATE, SessionChannel("s", 1, room=room))
    assert wet.shape == speech.shape
    assert _rms_db(wet) == pytest.approx(_rms_db(dry), abs=0.1)
    assert np.corrcoef(wet, speech)[0, 1] < 0.9  # reverberation decorrelates


def test_level_sets_rms_and_output_never_clips(speech):
    output = apply_session(speech, RATE, SessionChannel("s", 0, level_dbfs=-24.0))
    assert _rms_db(output) == pytest.approx(-24.0, abs=0.01)
    loud = apply_session(speech, RATE, SessionChannel("s", 0, level_dbfs=-2.0))
    assert np.max(np.abs(loud)) <= 0.99 + 1e-6


def test_json_round_trip_is_exact_and_same_seed_gives_same_bytes(speech):
    rng = np.random.default_rng(11)
    channels = [random_session(rng, f"sess{k}", reverb_probability=1.0,
                               noise_probability=1.0, telephone_probability=0.5,
                               codec_probability=1.0) for k in range(6)]
    assert len({c.codec for c in channels}) == 2
    for channel in channels:
        line = channel.dumps()
        assert "\n" not in line and json.loads(line)["session_id"] == channel.session_id
        restored = SessionChannel.loads(line)
        assert restored == channel
        assert apply_session(speech, RATE, restored).tobytes() == \
            apply_session(speech, RATE, channel).tobytes()
    again = random_session(np.random.default_rng(11), "sess0", reverb_probability=1.0,
                           noise_probability=1.0, telephone_probability=0.5,
                           codec_probability=1.0)
    assert again == channels[0]
    # Different sessions really sound different.
    a, b = (apply_session(speech, RATE, c) for c in channels[:2])
    assert not np.allclose(a, b, atol=1e-3)


def test_random_sessions_follow_their_probabilities_and_ranges():
    rng = np.random.default_rng(0)
    channels = [random_session(rng, str(k), snr_range=(10.0, 12.0)) for k in range(400)]
    rates = {name: np.mean([getattr(c, name) is not None for c in channels])
             for name in ("room", "noise_kind", "band", "codec")}
    assert rates["room"] == pytest.approx(0.5, abs=0.08)
    assert rates["noise_kind"] == pytest.approx(0.7, abs=0.08)
    assert rates["band"] == pytest.approx(0.2, abs=0.06)
    assert rates["codec"] == pytest.approx(0.4, abs=0.08)
    assert all(10.0 <= c.snr_db <= 12.0 for c in channels if c.snr_db is not None)
    assert all(2 <= sum(b.kind == "peaking" for b in c.eq) + 1 <= 3 for c in channels)
    assert len({c.seed for c in channels}) == len(channels)


def test_bad_descriptions_are_refused_with_the_field_named():
    with pytest.raises(SessionError, match="noise_kind and snr_db go together"):
        SessionChannel("s", 0, noise_kind="pink")
    with pytest.raises(SessionError, match="codec 'aac'"):
        SessionChannel("s", 0, codec="aac")
    with pytest.raises(SessionError, match="biquad kind 'notch'"):
        Biquad("notch", 100.0, 3.0)
    with pytest.raises(SessionError, match="not below Nyquist"):
        Biquad("peaking", 9000.0, 3.0).sos(RATE)
    with pytest.raises(SessionError, match="not a SessionChannel"):
        SessionChannel.from_json({"session_id": "s", "seed": 0, "colour": "red"})
    with pytest.raises(SessionError, match="1-D"):
        apply_session(np.zeros((2, 10), np.float32), RATE, SessionChannel("s", 0))
    assert math.isfinite(float(np.sum(apply_session(np.zeros(100, np.float32), RATE,
                                                    SessionChannel("s", 0, level_dbfs=-20,
                                                                   noise_kind="pink",
                                                                   snr_db=5.0)))))
