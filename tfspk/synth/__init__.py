"""Synthetic speech corpora from espeak-ng: random voices, sentences, TIMIT-61 alignments,
room impulse responses, noise and music, written in VoxCeleb1 / TIMIT / MUSAN / RIRS_NOISES
layouts (`tfspk.synth.corpus`; CLI `python -m tfrecords_tools.synth`)."""
