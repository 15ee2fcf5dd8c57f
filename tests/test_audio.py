"""Tests for tfspk.audio: reading every supported format, spans, resampling, checks."""
import builtins
import struct

import numpy as np
import pytest
import soundfile

from tfspk import audio
from tfspk.audio import AudioError, check_audio, load_audio, resample, write_wav


def sine(frequency, rate, seconds, amplitude=0.5):
    t = np.arange(int(round(rate * seconds))) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency_and_amplitude(x, rate):
    """Frequency and amplitude of the strongest sinusoid (Hann-windowed FFT)."""
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window))
    k = int(np.argmax(spectrum))
    # Parabolic interpolation of the log magnitude around the peak bin.
    a, b, c = np.log(spectrum[k - 1:k + 2])
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    frequency = (k + delta) * rate / len(x)
    amplitude = np.sqrt(2 * np.mean(x ** 2))
    return frequency, amplitude


def test_wav_roundtrip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, size=4000, dtype=np.int16)
    path = tmp_path / "x.wav"
    write_wav(path, pcm, 16000)
    samples, rate = load_audio(path)
    assert rate == 16000 and samples.dtype == np.float32
    np.testing.assert_array_equal(samples * 32768.0, pcm.astype(np.float32))
    # Float written back goes through round(x * 32768): same bytes again.
    write_wav(tmp_path / "y.wav", samples, rate)
    again, _ = soundfile.read(tmp_path / "y.wav", dtype="int16")
    np.testing.assert_array_equal(again, pcm)


def test_write_wav_clips_and_rejects_nan(tmp_path):
    write_wav(tmp_path / "c.wav", np.array([2.0, -2.0, 0.5]), 8000)
    pcm, _ = soundfile.read(tmp_path / "c.wav", dtype="int16")
    np.testing.assert_array_equal(pcm, [32767, -32768, 16384])
    with pytest.raises(AudioError, match="NaN") as info:
        write_wav(tmp_path / "n.wav", np.array([0.0, np.nan]), 8000)
    assert info.value.reason == "non_finite"


def test_load_librispeech_flac(librispeech_dir):
    path = sorted(librispeech_dir.glob("*.flac"))[0]
    samples, rate = load_audio(path)
    reference, reference_rate = soundfile.read(path, dtype="int16")
    assert rate == reference_rate == 16000
    assert samples.shape == reference.shape and len(samples) > 16000
    np.testing.assert_array_equal(samples * 32768.0, reference.astype(np.float32))
    # Resampled on load: duration kept, and loading at the file's rate changes nothing.
    at_8k, rate_8k = load_audio(path, 8000)
    assert rate_8k == 8000 and len(at_8k) == round(len(samples) / 2)
    same, _ = load_audio(path, 16000, resample=False)
    np.testing.assert_array_equal(same, samples)


@pytest.mark.parametrize("fmt,subtype,extension,tolerance", [
    ("WAV", "PCM_16", ".wav", 1e-4),
    ("FLAC", "PCM_16", ".flac", 1e-4),
    ("NIST", "PCM_16", ".sph", 1e-4),
    ("OGG", "VORBIS", ".ogg", None),
    ("MP3", "MPEG_LAYER_III", ".mp3", None),
])
def test_formats_decode_to_the_written_tone(tmp_path, fmt, subtype, extension, tolerance):
    x = sine(440.0, 16000, 1.0)
    path = tmp_path / ("tone" + extension)
    soundfile.write(path, x, 16000, format=fmt, subtype=subtype)
    samples, rate = load_audio(path)
    assert rate == 16000
    if tolerance is not None:  # lossless
        np.testing.assert_allclose(samples, x, atol=tolerance)
    else:  # lossy codecs may pad; the tone must survive
        frequency, amplitude = peak_frequency_and_amplitude(samples[2000:14000], rate)
        assert abs(frequency - 440.0) < 2.0
        assert abs(amplitude - 0.5) < 0.03


def test_m4a_via_pyav(tmp_path):
    av = pytest.importorskip("av")
    rate, x = 16000, sine(1000.0, 16000, 1.0)
    path = tmp_path / "00001.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
        frame.rate = rate
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)
    samples, got_rate = load_audio(path)
    assert got_rate == rate and samples.dtype == np.float32
    assert abs(len(samples) - len(x)) <= 2048  # AAC priming/padding frames
    frequency, amplitude = peak_frequency_and_amplitude(samples[3000:13000], rate)
    assert abs(frequency - 1000.0) < 2.0 and abs(amplitude - 0.5) < 0.03
    # A cut-off download (moov atom lost) and garbage are AudioErrors naming the file.
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with pytest.raises(AudioError, match="cut.m4a"):
        load_audio(cut)
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x01" * 100)
    with pytest.raises(AudioError, match="bad.m4a"):
        load_audio(bad)


def test_m4a_without_pyav_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    path = tmp_path / "00001.m4a"
    path.write_bytes(b"not decoded anyway")
    with pytest.raises(AudioError, match=r"pip install 'tfspk\[m4a\]'") as info:
        load_audio(path)
    assert info.value.reason == "missing_dependency" and "00001.m4a" in str(info.value)


def test_resample_keeps_frequency_and_amplitude():
    x = sine(1000.0, 22050, 2.0, amplitude=0.5)
    y = resample(x, 22050, 16000)
    assert y.dtype == np.float32 and len(y) == 32000
    frequency, amplitude = peak_frequency_and_amplitude(y[1000:-1000], 16000)
    assert abs(frequency - 1000.0) < 0.5
    assert abs(amplitude - 0.5) < 1e-3
    # Aligned in time: the output equals the ideal sine sampled at 16 kHz.
    ideal = sine(1000.0, 16000, 2.0, amplitude=0.5)
    np.testing.assert_allclose(y[1000:-1000], ideal[1000:-1000], atol=1e-5)


def test_resample_removes_content_above_the_new_nyquist():
    x = sine(6000.0, 16000, 1.0)  # above 4 kHz Nyquist of 8 kHz
    y = resample(x, 16000, 8000)
    assert np.sqrt(np.mean(y[500:-500] ** 2)) < 1e-3


def test_resample_validates_rates_and_passes_equal_rates():
    x = sine(100.0, 8000, 0.1)
    np.testing.assert_array_equal(resample(x, 8000, 8000), x)
    assert resample(np.zeros(0, np.float32), 8000, 16000).shape == (0,)
    with pytest.raises(ValueError, match="to_rate"):
        resample(x, 8000, 0)


def test_rate_mismatch_without_resampling_is_an_error(tmp_path):
    write_wav(tmp_path / "a.wav", sine(100.0, 22050, 0.2), 22050)
    with pytest.raises(AudioError, match="22050 Hz, expected 16000") as info:
        load_audio(tmp_path / "a.wav", 16000, resample=False)
    assert info.value.reason == "sample_rate"


def test_spans_match_slices_of_the_whole_file(tmp_path):
    x = sine(300.0, 44100, 1.0) + sine(2500.0, 44100, 1.0, amplitude=0.2)
    write_wav(tmp_path / "a.wav", x, 44100)
    whole, _ = load_audio(tmp_path / "a.wav")
    part, _ = load_audio(tmp_path / "a.wav", start=1234, end=5678)
    np.testing.assert_array_equal(part, whole[1234:5678])
    # Positions are at the output rate; a resampled span equals the slice of the
    # resampled whole file.
    whole16, _ = load_audio(tmp_path / "a.wav", 16000)
    part16, _ = load_audio(tmp_path / "a.wav", 16000, start=4001, end=12345)
    assert len(part16) == 12345 - 4001
    np.testing.assert_allclose(part16, whole16[4001:12345], atol=1e-5)
    tail16, _ = load_audio(tmp_path / "a.wav", 16000, start=15000)
    np.testing.assert_allclose(tail16, whole16[15000:], atol=1e-5)
    for start, end in ((0, 44101), (50000, None), (10, 10)):
        with pytest.raises(AudioError, match="span") as info:
            load_audio(tmp_path / "a.wav", start=start, end=end)
        assert info.value.reason == "span"


def test_multichannel_needs_downmix(tmp_path):
    stereo = np.stack([sine(200.0, 8000, 0.5), sine(300.0, 8000, 0.5, 0.25)], axis=1)
    write_wav(tmp_path / "s.wav", stereo, 8000)
    with pytest.raises(AudioError, match="2 channels") as info:
        load_audio(tmp_path / "s.wav")
    assert info.value.reason == "multichannel"
    mono, _ = load_audio(tmp_path / "s.wav", downmix=True)
    pcm, _ = soundfile.read(tmp_path / "s.wav", dtype="int16")
    np.testing.assert_allclose(mono, pcm.mean(axis=1) / 32768.0, atol=1e-7)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(AudioError, match="nothing.wav: file not found") as info:
        load_audio(tmp_path / "nothing.wav")
    assert info.value.reason == "missing"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="junk.wav: cannot read audio") as info:
        load_audio(junk)
    assert info.value.reason == "unreadable"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("fmt,extension", [("WAV", ".wav"), ("NIST", ".sph")])
def test_truncated_file_is_detected_from_its_header(tmp_path, fmt, extension):
    # libsndfile silently reports only the frames present; the header says 8000.
    path = tmp_path / ("cut" + extension)
    soundfile.write(path, sine(440.0, 16000, 0.5), 16000, format=fmt, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 3000])
    assert soundfile.info(path).frames < 8000  # what soundfile alone would believe
    with pytest.raises(AudioError, match=r"cut\.\w+: truncated: the header declares 8000"):
        load_audio(path)


def test_truncated_mp3_is_detected_from_decoded_count(tmp_path):
    path = tmp_path / "cut.mp3"
    soundfile.write(path, sine(440.0, 16000, 1.0), 16000, format="MP3")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(AudioError, match="truncated") as info:
        load_audio(path)
    assert info.value.reason == "truncated"


def test_wav_header_parser_handles_extra_chunks(tmp_path):
    # A LIST chunk before "data" (common in converted files) must not confuse the check.
    pcm = (np.arange(100, dtype=np.int16) * 100).tobytes()
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16)
    info_chunk = struct.pack("<4sI", b"LIST", 5) + b"INFOx" + b"\x00"  # odd size, padded
    data = struct.pack("<4sI", b"data", len(pcm)) + pcm
    body = b"WAVE" + fmt + info_chunk + data
    path = tmp_path / "list.wav"
    path.write_bytes(struct.pack("<4sI", b"RIFF", len(body)) + body)
    samples, _ = load_audio(path)
    np.testing.assert_array_equal(samples * 32768, np.arange(100) * 100)
    assert audio._declared_frames(str(path)) == 100


def test_check_audio_reasons():
    rate = 16000
    good = sine(200.0, rate, 1.0)
    check_audio(good, rate, "good.wav", min_seconds=0.5)
    cases = [
        (np.zeros(0, np.float32), "empty", "no samples"),
        (np.where(np.arange(rate) == 7, np.nan, good).astype(np.float32), "non_finite",
         "1 of 16000 samples are NaN or Inf"),
        (good[:4000], "too_short", "0.250 s < 0.5 s"),
        (np.zeros(rate, np.float32), "silent", "all samples are zero"),
        (good * 1e-4, "silent", "RMS -89.0 dBFS after removing the DC offset"),
        (np.full(rate, 0.25, np.float32), "silent", "constant signal (DC offset 0.25 only"),
        # DC plus a little noise: loud by peak, silent once the offset is removed.
        (0.5 + 1e-4 * np.random.default_rng(0).standard_normal(rate).astype(np.float32),
         "silent", "after removing the DC offset (0.5)"),
    ]
    for samples, reason, message in cases:
        with pytest.raises(AudioError) as info:
            check_audio(samples, rate, "x.wav", min_seconds=0.5)
        assert info.value.reason == reason
        assert message in str(info.value) and "x.wav" in str(info.value)
    # -50 dBFS peak (-53 dBFS RMS) is quiet but not silent, with or without a DC offset.
    check_audio(good * 10 ** (-50 / 20) / 0.5, rate, "quiet.wav")
    check_audio(0.3 + good * 10 ** (-50 / 20) / 0.5, rate, "quiet_dc.wav")


def test_float_file_beyond_full_scale_is_refused_with_its_peak(tmp_path):
    rate = 16000
    loud = sine(200.0, rate, 1.0, amplitude=1.5)
    path = tmp_path / "loud.wav"
    soundfile.write(path, loud, rate, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"loud.wav: float samples reach 1.5, beyond "
                                         r"±1.0 full scale") as info:
        load_audio(path, rate)
    assert info.value.reason == "out_of_range"
    # Exactly full scale is fine, and so is an integer file (it cannot exceed it).
    soundfile.write(tmp_path / "full.wav", loud / 1.5, rate, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "full.wav", rate)[0], loud / 1.5)


def test_check_audio_clipping_is_opt_in():
    rate = 16000
    clipped = np.clip(sine(200.0, rate, 1.0, amplitude=2.0), -1.0, 1.0)
    check_audio(clipped, rate, "c.wav")  # off by default
    with pytest.raises(AudioError, match="clipped: 6[0-9].[0-9]+% of samples") as info:
        check_audio(clipped, rate, "c.wav", max_clipped_fraction=0.01)
    assert info.value.reason == "clipped"
    check_audio(sine(200.0, rate, 1.0), rate, "ok.wav", max_clipped_fraction=0.01)
