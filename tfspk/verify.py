"""Verify one trial with a trained export.

    python -m tfspk.verify --model=exports/spk a.wav b.wav [--json] [--vad]

Prints the cosine score, the calibrated log-likelihood ratio (when the export has a
calibration.json) and the decision at the model's threshold (or --threshold).
"""
from __future__ import annotations

import json

from absl import app, flags

from tfspk.shards.cli import user_errors


def define_flags(flag_values=flags.FLAGS):
    """CLI flags; defined on demand so importing this module defines none."""
    flags.DEFINE_string("model", None, "Export directory (BASE/NAME or BASE/NAME/<version>).",
                        flag_values=flag_values)
    flags.DEFINE_string("calibration", None, "Calibration JSON; default: the export's "
                        "calibration.json if present.", flag_values=flag_values)
    flags.DEFINE_float("threshold", None, "Decision threshold on the cosine score; "
                       "default: the calibration's.", flag_values=flag_values)
    flags.DEFINE_bool("json", False, "Print one JSON object.", flag_values=flag_values)
    flags.DEFINE_bool("vad", False, "Drop non-speech (energy VAD) first.",
                      flag_values=flag_values)
    flags.mark_flag_as_required("model", flag_values=flag_values)


def verify_from_flags(argv, flag_values=flags.FLAGS):
    from tfspk.inference import SpeakerModel

    if len(argv) != 3:
        raise app.UsageError("give exactly two audio files: ENROLL TEST")
    model = SpeakerModel.load_for_cli(flag_values.model, flag_values.calibration,
                                      threshold=flag_values.threshold, vad=flag_values.vad)
    return model.verify(argv[1], argv[2])


def format_result(result, as_json: bool) -> str:
    if as_json:
        return json.dumps(result.to_dict())
    llr = "n/a (uncalibrated)" if result.llr is None else f"{result.llr:.4f}"
    if result.accepted is None:
        decision = "n/a (no threshold: pass --threshold or calibrate)"
    else:
        decision = (f"{'accept' if result.accepted else 'reject'} "
                    f"(threshold {result.threshold:.4f})")
    return f"score: {result.score:.6f}\nllr: {llr}\ndecision: {decision}"


@user_errors
def main(argv, flag_values=flags.FLAGS):
    print(format_result(verify_from_flags(argv, flag_values), flag_values.json))


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
