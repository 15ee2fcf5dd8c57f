"""The TFRecord schema: one int16 <-> float scaling in and out of the graph."""
import numpy as np
import pytest
import tensorflow as tf

from tfspk import audio, schema


def test_graph_decoding_is_the_numpy_scaling_for_every_int16_value():
    every = np.arange(-32768, 32768, dtype=np.int16)
    decoded = schema.decode_pcm16(tf.constant(every.astype("<i2").tobytes())).numpy()
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, audio.int16_to_float(every))
    # ... and its inverse gives the PCM back bit for bit.
    np.testing.assert_array_equal(audio.float_to_int16(decoded), every)


def test_parse_example_round_trips_the_serialized_example():
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], np.int16)
    serialized = schema.serialize_example("u1", "spk", 3, pcm, 8000, [(0, 4, "aa")])
    parsed = schema.parse_example(tf.constant(serialized))
    np.testing.assert_array_equal(parsed["waveform"].numpy(), audio.int16_to_float(pcm))
    assert int(parsed["num_samples"]) == len(pcm) and int(parsed["sample_rate"]) == 8000
    assert parsed["phone_labels"].numpy().tolist() == [b"aa"]
    numpy_view = schema.parse_example_numpy(serialized)
    np.testing.assert_array_equal(numpy_view["pcm16"], pcm)
    assert numpy_view["phones"] == [(0, 4, "aa")]


def test_a_newer_schema_version_is_refused():
    example = tf.train.Example.FromString(
        schema.serialize_example("u1", "spk", 0, np.zeros(4, np.int16), 16000))
    example.features.feature["schema_version"].int64_list.value[0] = schema.SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="schema version"):
        schema.parse_example_numpy(example.SerializeToString())
    with pytest.raises(tf.errors.InvalidArgumentError, match="newer tfspk schema"):
        schema.parse_example(tf.constant(example.SerializeToString()))
