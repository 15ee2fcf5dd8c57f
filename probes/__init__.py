"""Command-line probes of trained speaker networks: `python -m probes.<name>` (see
`tfspk.probes` for the library they run). Each module here holds the flags and `main`
of one probe and re-exports its library names; `probes.cli` the flags they share."""
