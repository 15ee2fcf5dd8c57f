"""Frame-level analysis of trained speaker networks (Shon, Tang & Glass, SLT 2018, sec. 4).

Every probe reads a model through `tfspk.probes.frames.FrameEmbedder` (a SavedModel exported by
`tfspk.export`, a training directory + checkpoint, or any callable) and a TIMIT-layout
corpus, and writes PNG figures, CSV/JSON tables and one line per file in `report.md`:

- `probes.broad_class`: nearest-centroid broad-class accuracy per layer, confusions (Fig. 5)
- `probes.phone_recognition`: BiLSTM phone recognizer (framewise cross-entropy or CTC),
  phone error rate per layer with 39-phone folding (Fig. 2)
- `probes.tsne`: t-SNE of phone-segment embeddings, first vs last layer (Fig. 6)
- `probes.critical_phones`: highest/lowest speaker-similarity phones (Fig. 7)
- `probes.similarity_matrix`: frame-by-frame cosine similarity of two utterances (Fig. 8)
- `probes.over_training`: broad-class accuracy and PER at every checkpoint (Figs. 3, 4)
- `probes.run`: all of them, plus `results.json`

The library is here (`tfspk.probes.<name>`); `probes.<name>` are the command lines
(`python -m probes.<name> ...`) and re-export these names. Every probe checks its options
(`checks`: an unknown layer, a phone label outside TIMIT-61, a run without checkpoints,
...) and the corpus (`data.load_split`: each .PHN against its audio's header) before it
embeds anything, so bad input is refused in seconds, naming the option or file.
"""
