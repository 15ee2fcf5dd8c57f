"""SavedModel export for TF Serving: raw 16 kHz waveform in, speaker embedding out.

`python -m tfspk.export --model_dir=RUN --export_dir=BASE/NAME` restores a training
run (`RUN/model_spec.json` + `RUN/checkpoints/ckpt-<step>`) and writes
`BASE/NAME/<version>/`, TF Serving's versioned layout, with three signatures:

* `serving_default`: `waveform` float32 [batch, samples] in [-1, 1] at the training
  sample rate, `lengths` int32 [batch] (valid samples per row; rows are right-padded)
  -> `embedding` float32 [batch, D].
* `frame_embeddings`: same inputs -> `mfcc` [batch, frames, F] and every frame-level
  layer of the network (`conv1`..`conv4`, or `frame1`..`frame5`; for the frame-level
  CNN also `fc1`, `fc2`), each with its `<layer>_lengths` [batch]. Frames past a row's
  length are zero.
* `embeddings`: same inputs -> every embedding layer of the network (`fc1`, `fc2`)
  from one run of it; `eval.extract --layers=fc1,fc2` uses it.

Kaldi MFCC and cepstral mean normalisation run inside the graph with the training
options, so a client sends audio only. Beside the SavedModel, `assets.extra/` holds
`tf_serving_warmup_requests` (PredictionLogs TF Serving replays before it reports the
model ready), `frame_geometry.json` (where each layer's frames sit in the waveform)
and `source.txt` (the checkpoint exported); `BASE/models.config` and
`BASE/batching.config` are example server configs.

What clients may send, and what they get back (InvalidArgument is what TF Serving
returns to the client: HTTP 400 with the message, or gRPC status INVALID_ARGUMENT):

| input | result |
| --- | --- |
| rows right-padded to the longest, any mix of lengths | each row's embedding equals the row sent alone; padding values never matter (they are zeroed) |
| a batch of one | `[1, D]` |
| an empty batch (`[0, S]`, `lengths` `[0]`) | `[0, D]` |
| `lengths` with a different batch size than `waveform` | InvalidArgument `lengths must have one entry per waveform row` |
| a negative length | InvalidArgument `lengths must be >= 0`, naming the rows |
| a length longer than the row | InvalidArgument `lengths exceed the waveform width of the batch`, naming the rows |
| a row shorter than one analysis window (25 ms) | InvalidArgument `utterance shorter than one analysis window`, naming the rows |
| a row shorter than the network's receptive field (`min_samples`) | InvalidArgument `utterance shorter than the model minimum`, naming the rows |
| NaN or Inf in the valid part of a row | InvalidArgument `waveform contains NaN or Inf`, naming the rows (NaN/Inf in the padding is ignored) |
| wrong rank (`waveform` not 2-D or `lengths` not 1-D) | InvalidArgument `Shape of tensor waveform [16000] is not compatible with expected shape [?,?]` (or `lengths`) |
| wrong dtype | InvalidArgument from the signature itself (TF Serving checks it) |

The checks run in order, so a batch with several problems reports the first one in
this table.

The package, one module per concept: `checkpoints` (which checkpoint, restoring it),
`input_checks` (the table above, in the graph), `archive` (the two endpoints),
`geometry` (`frame_geometry.json`; the arithmetic is `tfspk.frontend.framing`),
`warmup` (needs `tensorflow-serving-api`, `pip install tfspk[serving]`; without it
the warm-up file is skipped with a notice), `server_configs` (`models.config`,
`batching.config`), `saved_model` (`export_saved_model`, versions) and `cli`.
"""
from tfspk.export.archive import EMBEDDING_LAYERS, build_export_archive
from tfspk.export.checkpoints import resolve_checkpoint, restore_embedding_model
from tfspk.export.cli import define_flags, export_from_flags, main
from tfspk.export.geometry import (EXTRA_DIR, GEOMETRY_FILENAME, analysis_window_samples,
                                   frame_geometry, min_samples, receptive_field,
                                   write_frame_geometry)
from tfspk.export.saved_model import export_saved_model, next_version
from tfspk.export.server_configs import write_serving_configs
from tfspk.export.warmup import (WARMUP_FILENAME, ServingApiMissingError,
                                 write_warmup_requests)

__all__ = [
    "EMBEDDING_LAYERS", "EXTRA_DIR", "GEOMETRY_FILENAME", "ServingApiMissingError",
    "WARMUP_FILENAME", "analysis_window_samples", "build_export_archive", "define_flags",
    "export_from_flags", "export_saved_model", "frame_geometry", "main", "min_samples",
    "next_version", "receptive_field", "resolve_checkpoint", "restore_embedding_model",
    "write_frame_geometry", "write_serving_configs", "write_warmup_requests",
]
