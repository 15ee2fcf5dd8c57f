"""Compose a waveform front end with an embedding model; lives in
`tfspk.frontend.layers` (re-exported here for `tfspk.models.with_waveform_frontend`)."""
from tfspk.frontend.layers import with_waveform_frontend

__all__ = ["with_waveform_frontend"]
