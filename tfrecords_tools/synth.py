r"""Generates a synthetic speech corpus with espeak-ng (no downloads needed).

    python -m tfrecords_tools.synth --kind=voxceleb --output_dir=data/synth_vox \
        --num_speakers=200 --utts_per_speaker=20 --seed=0 --num_workers=2
    python -m tfrecords_tools.synth --kind=timit --output_dir=data/synth_timit \
        --num_speakers=40 --utts_per_speaker=10
    python -m tfrecords_tools.synth --kind=augmentation --output_dir=data/synth_aug \
        --num_speakers=20 --utts_per_speaker=10

Kinds and layouts are described in `tfspk.synth.corpus`. The same flags give the same
bytes whatever --num_workers. Prints the summary (also written to OUTPUT_DIR/summary.json).
"""
import json

from absl import app, flags

from tfspk import flagfiles
from tfspk.shards.cli import user_errors
from tfspk.synth import corpus, voices

_KINDS = ("voxceleb", "timit", "augmentation")

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_enum("kind", None, _KINDS, "Which corpus layout to generate.", **fv)
    flags.DEFINE_string("output_dir", None, "Directory to write the corpus into.", **fv)
    flags.DEFINE_integer("num_speakers", None, "Number of speakers (babble speakers for "
                         "--kind=augmentation).", lower_bound=1, **fv)
    flags.DEFINE_integer("utts_per_speaker", None, "Utterances per speaker (default 10 for "
                         "timit, as in TIMIT).", lower_bound=1, **fv)
    flags.DEFINE_integer("seed", 0, "Seed of every random choice.", lower_bound=0, **fv)
    flags.DEFINE_float("spread", corpus.DEFAULT_SPREAD, "How far voices deviate from neutral "
                       "(0 = identical voices per sex, 1 = wide).", lower_bound=0.0, **fv)
    flags.DEFINE_integer("num_workers", 1, "Synthesis processes.", lower_bound=1, **fv)
    flags.DEFINE_enum("engine", "espeak", voices.ENGINES, "Voice-production method of every "
                      "speaker: espeak-ng's own engine, or its Klatt synthesizer (variant "
                      "1-4).", **fv)
    flags.DEFINE_integer("num_test_speakers", None, "voxceleb: speakers (the last ids) kept for "
                         "veri_test.txt; default a fifth, at least 2.", lower_bound=2, **fv)
    flags.DEFINE_integer("sessions_per_speaker", 3, "voxceleb: sessions (channels) per speaker.",
                         lower_bound=1, **fv)
    flags.DEFINE_integer("num_noise", 20, "augmentation: noise files.", lower_bound=0, **fv)
    flags.DEFINE_integer("num_music", 10, "augmentation: music files.", lower_bound=0, **fv)
    flags.DEFINE_integer("rooms_per_size", 5, "augmentation: simulated rooms per room size.",
                         lower_bound=0, **fv)
    flags.DEFINE_integer("rirs_per_room", 4, "augmentation: impulse responses per room.",
                         lower_bound=1, **fv)
    flags.mark_flags_as_required(["kind", "output_dir", "num_speakers"], **fv)


def generate(kind, output_dir, num_speakers, utts_per_speaker, seed, spread, num_workers,
             engine="espeak", **kind_options):
    """Dispatch to the `tfspk.synth.corpus` generator of `kind`; returns its summary."""
    if kind == "voxceleb":
        return corpus.generate_voxceleb(
            output_dir, num_speakers, utts_per_speaker or 10, seed=seed, spread=spread,
            num_workers=num_workers, progress=True, engine=engine,
            num_test_speakers=kind_options.get("num_test_speakers"),
            sessions_per_speaker=kind_options.get("sessions_per_speaker", 3))
    if kind == "timit":
        return corpus.generate_timit(output_dir, num_speakers, utts_per_speaker or 10,
                                     seed=seed, spread=spread, num_workers=num_workers,
                                     progress=True, engine=engine)
    if kind == "augmentation":
        return corpus.generate_augmentation(
            output_dir, num_speakers, utts_per_speaker or 10, seed=seed, spread=spread,
            num_workers=num_workers, progress=True, engine=engine,
            **{name: kind_options[name] for name in ("num_noise", "num_music",
                                                      "rooms_per_size", "rirs_per_room")
               if name in kind_options})
    raise ValueError(f"unknown kind {kind!r}; known: {_KINDS}")


@user_errors  # an unwritable --output_dir and the like: `error: ...`, exit 2
def main(argv, flag_values=FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    FLAGS = flag_values  # noqa: N806 - the flags this call reads
    try:
        summary = generate(FLAGS.kind, FLAGS.output_dir, FLAGS.num_speakers,
                           FLAGS.utts_per_speaker, FLAGS.seed, FLAGS.spread, FLAGS.num_workers,
                           engine=FLAGS.engine, num_test_speakers=FLAGS.num_test_speakers,
                           sessions_per_speaker=FLAGS.sessions_per_speaker,
                           num_noise=FLAGS.num_noise, num_music=FLAGS.num_music,
                           rooms_per_size=FLAGS.rooms_per_size,
                           rirs_per_room=FLAGS.rirs_per_room)
    except corpus.CorpusArgumentError as error:
        raise app.UsageError(str(error)) from error
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
