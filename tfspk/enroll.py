"""Enroll a speaker into a speaker database (tfspk.speaker_db).

    python -m tfspk.enroll --db=DB --speaker=NAME --model=exports/spk FILES...

Enrolling the same speaker again adds the new utterances. The database remembers the
model (path + fingerprint) and refuses embeddings from another one.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

from tfspk.shards.cli import user_errors


def define_flags(flag_values=flags.FLAGS):
    """CLI flags; defined on demand so importing this module defines none."""
    flags.DEFINE_string("db", None, "Speaker database directory.", flag_values=flag_values)
    flags.DEFINE_string("speaker", None, "Speaker name.", flag_values=flag_values)
    flags.DEFINE_string("model", None, "Export directory (BASE/NAME or BASE/NAME/<version>).",
                        flag_values=flag_values)
    flags.DEFINE_bool("vad", False, "Drop non-speech (energy VAD) first.",
                      flag_values=flag_values)
    flags.DEFINE_float("lock_timeout", 30.0, "Seconds to wait for another writer.",
                       lower_bound=0.0, flag_values=flag_values)
    flags.mark_flags_as_required(["db", "speaker", "model"], flag_values=flag_values)


def enroll_files(db_dir, speaker, model, files, lock_timeout=30.0, progress=True):
    """Embeds `files` and adds them to `speaker`; returns the new state."""
    from tqdm import tqdm

    from tfspk import speaker_db

    db = speaker_db.SpeakerDB(db_dir)
    record = speaker_db.model_record(model)
    if db.exists():  # refuse a different model before spending time embedding
        db.check_model(db.load(), record)
    embeddings = [model.embed(path) for path in tqdm(files, desc="enrolling", unit="utt",
                                                    disable=not progress, file=sys.stderr)]
    import numpy as np

    ids = [os.path.abspath(path) for path in files]
    return db.enroll(speaker, ids, np.stack(embeddings), record, timeout=lock_timeout)


@user_errors
def main(argv, flag_values=flags.FLAGS):
    from tfspk.inference import SpeakerModel

    if len(argv) < 2:
        raise app.UsageError("give at least one audio file to enroll")
    FLAGS = flag_values
    model = SpeakerModel.load_for_cli(FLAGS.model, vad=FLAGS.vad)
    state = enroll_files(FLAGS.db, FLAGS.speaker, model, argv[1:], FLAGS.lock_timeout)
    count = int((state.speakers == FLAGS.speaker).sum())
    print(f"{FLAGS.speaker}: {count} utterances; {len(state.speaker_names())} speakers "
          f"in {FLAGS.db}")


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
