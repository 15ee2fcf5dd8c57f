"""`python -m tfspk.export`: flags over `export_saved_model`."""
from __future__ import annotations

from absl import app, flags

from tfspk.export.archive import EMBEDDING_LAYERS
from tfspk.export.saved_model import export_saved_model

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined on demand so importing this library module defines none."""
    flags.DEFINE_string("model_dir", None, "Training directory (model_spec.json + "
                        "checkpoints/).", flag_values=flag_values)
    flags.DEFINE_string("export_dir", None, "BASE/NAME; the SavedModel goes to "
                        "BASE/NAME/<version>.", flag_values=flag_values)
    flags.DEFINE_integer("version", None, "Version number; default: one above the highest "
                         "present.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "Step number or checkpoint prefix; default: "
                        "latest.", flag_values=flag_values)
    flags.DEFINE_enum("embedding_layer", None, list(EMBEDDING_LAYERS),
                      "Embedding to serve; default: the one trained on (model_spec.json).",
                      flag_values=flag_values)
    flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["model_dir", "export_dir"], flag_values=flag_values)


def export_from_flags(flag_values=FLAGS) -> str:
    """What the CLI does, for parsed `flag_values` (see `define_flags`)."""
    try:
        return export_saved_model(flag_values.model_dir, flag_values.export_dir,
                                  flag_values.version, flag_values.checkpoint,
                                  flag_values.embedding_layer, flag_values.warmup)
    except (FileNotFoundError, FileExistsError) as error:
        raise app.UsageError(str(error)) from error


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(f"exported {export_from_flags()}")
