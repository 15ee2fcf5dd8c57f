"""Identify the speaker of a file among those enrolled in a speaker database.

    python -m tfspk.identify --db=DB --model=exports/spk FILE [--top_k=5] [--json]

Prints the top-k enrolled speakers with their cosine scores (against each speaker's mean
embedding); below the threshold (--threshold, default the model calibration's) the
answer is "unknown" (open-set rejection).
"""
from __future__ import annotations

import json

from absl import app, flags

from tfspk.shards.cli import user_errors


def define_flags(flag_values=flags.FLAGS):
    """CLI flags; defined on demand so importing this module defines none."""
    flags.DEFINE_string("db", None, "Speaker database directory.", flag_values=flag_values)
    flags.DEFINE_string("model", None, "Export directory (BASE/NAME or BASE/NAME/<version>).",
                        flag_values=flag_values)
    flags.DEFINE_integer("top_k", 5, "Speakers to list.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_float("threshold", None, "Open-set threshold on the cosine score; "
                       "default: the model calibration's (none: never unknown).",
                       flag_values=flag_values)
    flags.DEFINE_bool("json", False, "Print one JSON object.", flag_values=flag_values)
    flags.DEFINE_bool("vad", False, "Drop non-speech (energy VAD) first.",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["db", "model"], flag_values=flag_values)


def identify_file(db_dir, model, path, top_k=5, threshold=None) -> dict:
    from tfspk import speaker_db

    threshold = model.threshold if threshold is None else threshold
    return speaker_db.SpeakerDB(db_dir).identify(
        model.embed(path), speaker_db.model_record(model), top_k, threshold)


@user_errors
def main(argv, flag_values=flags.FLAGS):
    from tfspk.inference import SpeakerModel

    if len(argv) != 2:
        raise app.UsageError("give exactly one audio file")
    FLAGS = flag_values
    model = SpeakerModel.load_for_cli(FLAGS.model, threshold=FLAGS.threshold, vad=FLAGS.vad)
    result = identify_file(FLAGS.db, model, argv[1], FLAGS.top_k)
    if FLAGS.json:
        print(json.dumps(result))
        return
    for rank, entry in enumerate(result["top_k"], start=1):
        print(f"{rank}\t{entry['speaker']}\t{entry['score']:.6f}")
    print(f"speaker: {result['speaker']}")


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
