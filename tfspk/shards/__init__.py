"""Sharded, verified TFRecords from any speech corpus.

- `planning`: duration-balanced, speaker-mixed shard assignment and in-shard order,
  fixed in `<split>.plan.json`.
- `mixing`: distinct speakers per window of a training stream vs a uniform shuffle.
- `writer`: atomic writes (tmp file, fsync, rename) of shards and small files.
- `metadata`: file names of a split and the metadata/sidecar/TSV formats.
- `encode`: the per-utterance load + check + serialise step (shared with Beam).
- `build`: the local multiprocess, resumable build.
- `verify`: re-reads shards against metadata and checksums.
- `inspect`: speakers, utterances, hours and a duration histogram.
- `beam`: the same build as an Apache Beam pipeline.

CLIs: `python -m tfrecords_tools.{build,inspect,verify,beam_build}`.
"""
