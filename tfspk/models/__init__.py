"""tfspk embedding models, registered by name (`tfspk.models.registry`): the paper CNN
(and its frame-level variant), the x-vector TDNN, the training classifier, waveform
front-end composition, and frame-level views and analytic cost of these models."""
from tfspk.models.classifier import SpeakerClassifier, build_classifier, make_head
from tfspk.models.cost import FlopCount, count_flops_per_frame, count_parameters
from tfspk.models.frame_level import frame_embedding_model, layer_frame_geometry
from tfspk.models.frontend import with_waveform_frontend
from tfspk.models import registry  # noqa: I001 - after the modules it imports
from tfspk.models.paper_cnn import build_frame_level_cnn, build_paper_cnn
from tfspk.models.xvector import build_xvector, context_to_kernel

__all__ = [
    "FlopCount", "SpeakerClassifier", "build_classifier", "build_frame_level_cnn",
    "build_paper_cnn", "build_xvector", "context_to_kernel", "count_flops_per_frame",
    "count_parameters", "frame_embedding_model", "layer_frame_geometry", "make_head",
    "registry", "with_waveform_frontend",
]
