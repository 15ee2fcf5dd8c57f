"""Example TF Serving configs (`models.config`, `batching.config`) beside an export."""
from __future__ import annotations

import os


def write_serving_configs(export_base: str, model_name: str) -> list[str]:
    """Example `models.config` and `batching.config` in the parent of BASE/NAME.

    `base_path` is where the official container mounts models (`/models/<name>`).
    """
    parent = os.path.dirname(os.path.abspath(export_base.rstrip("/")))
    models_config = os.path.join(parent, "models.config")
    with open(models_config, "w", encoding="utf-8") as f:
        f.write(
            "model_config_list {\n"
            "  config {\n"
            f"    name: \"{model_name}\"\n"
            f"    base_path: \"/models/{model_name}\"\n"
            "    model_platform: \"tensorflow\"\n"
            "  }\n"
            "}\n")
    batching_config = os.path.join(parent, "batching.config")
    with open(batching_config, "w", encoding="utf-8") as f:
        # Rows of different widths are padded by the batcher; the graph zeroes
        # everything past `lengths`, so the padding value cannot change a result.
        # Compute grows with the batch's longest row, so keep batches modest and the
        # timeout short.
        f.write(
            "max_batch_size { value: 32 }\n"
            "batch_timeout_micros { value: 5000 }\n"
            "max_enqueued_batches { value: 100 }\n"
            "num_batch_threads { value: 4 }\n"
            "pad_variable_length_inputs: true\n")
    return [models_config, batching_config]
