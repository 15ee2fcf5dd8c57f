"""tfspk.demo: the schedule a --max_steps override gets, the corpus choice and its guard,
and the flag files it uses (the whole demo is timed by hand: see WORKSPACE_NOTES.md)."""
import json

import pytest
from absl import flags

from tfspk import configs, demo
from tfspk.training import config as train_config


@pytest.mark.parametrize("max_steps", [1, 10, 30, 49, 50, 51, 400, 600, 5000])
@pytest.mark.parametrize("name", ["demo.flags", "demo_real.flags"])
def test_max_steps_override_gets_a_warmup_the_trainer_accepts(name, max_steps):
    path = configs.path(name)
    file_warmup = int(demo.flagfile_value(path, "warmup_steps"))
    file_steps = int(demo.flagfile_value(path, "max_steps"))
    args = demo.schedule_args(path, max_steps)
    values = dict(arg[2:].split("=") for arg in args)
    warmup = int(values["warmup_steps"])
    assert int(values["max_steps"]) == max_steps
    assert 0 <= warmup < max_steps and warmup <= file_warmup
    # The schedule keeps its shape: warm-up fraction as in the file, rounded down.
    assert warmup == min(file_warmup * max_steps // file_steps, file_warmup, max_steps - 1)
    # What tfspk.train would build from the flag file plus these flags validates.
    flag_values = flags.FlagValues()
    train_config.define_flags(flag_values)
    flag_values(["tfspk.train", f"--flagfile={path}", "--model_dir=/tmp/unused",
                 "--train_data=/tmp/unused-*.tfrecord", "--augmentation_data=/tmp/unused",
                 *args])
    train_config.validate_config(train_config.from_flags(flag_values))


def test_no_override_keeps_the_flag_file_schedule():
    assert demo.schedule_args(configs.path("demo.flags"), None) == []


def test_flagfile_value_takes_the_last_setting(tmp_path):
    path = tmp_path / "x.flags"
    path.write_text("# comment\n--max_steps=10\n--warmup_steps=3\n--max_steps=20\n")
    assert demo.flagfile_value(str(path), "max_steps") == "20"
    assert demo.flagfile_value(str(path), "margin") is None


def test_default_corpus_is_the_shared_librispeech_only_when_present(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "LIBRISPEECH_DIR", str(tmp_path / "missing"))
    assert demo.default_librispeech_dir() == ""
    monkeypatch.setattr(demo, "LIBRISPEECH_DIR", str(tmp_path))
    assert demo.default_librispeech_dir() == str(tmp_path)


def test_bad_librispeech_dir_and_mixed_corpora_are_refused(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        demo.run_demo(str(tmp_path / "out"), librispeech_dir=str(tmp_path / "nope"))
    out = tmp_path / "synthetic_out"
    out.mkdir()
    (out / "corpus.json").write_text(json.dumps({"corpus": "synthetic"}))
    with pytest.raises(ValueError, match="holds a synthetic demo"):
        demo.run_demo(str(out), librispeech_dir=str(tmp_path))
