import pytest

from safecompress.config import PRESETS, RunConfig, load_config, parse_override, preset_dict
from safecompress.errors import ConfigError


def test_defaults_are_valid():
    cfg = load_config()
    assert isinstance(cfg, RunConfig)
    assert cfg.data.name == "purchase100-synth" and cfg.method.name == "safecompress"


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_validate(preset):
    cfg = load_config(preset=preset)
    assert cfg.train.epochs >= 1


def test_override_order_file_then_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  width: 0.5\ntrain:\n  epochs: 7\n")
    cfg = load_config(f, "ci", ["train.epochs=9", "data.name=digits"])
    assert cfg.model.width == 0.5  # file beats preset (ci sets 0.25)
    assert cfg.train.epochs == 9  # --set beats file
    assert cfg.data.name == "digits"


def test_misspelled_key_names_the_intended_key():
    with pytest.raises(ConfigError) as exc:
        load_config(overrides=["trian.epochs=3"])
    assert "did you mean 'train'" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config(overrides=["model.widht=0.5"])
    assert "did you mean 'model.width'" in str(exc.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        load_config(overrides=["model.width=-1", "train.epoch=2", "data.name=cifar11-synth", "train.optimizer=rmsprop"])
    problems = exc.value.problems
    assert len(problems) == 4
    joined = "\n".join(problems)
    assert "model.width" in joined and "train.epochs" in joined and "cifar10-synth" in joined and "'sgd'" in joined


def test_unknown_preset_and_bad_override():
    with pytest.raises(ConfigError, match="did you mean 'cpu'"):
        preset_dict("cpuu")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("model.width")
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}


def test_malformed_yaml_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(f)
    f.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_split_sizes_accept_counts_and_fractions():
    cfg = load_config(overrides=["data.split.train=1000", "data.split.val=0.2"])
    assert cfg.data.split.train == 1000 and isinstance(cfg.data.split.train, int)
    assert cfg.data.split.val == 0.2


def test_milestones_validated():
    with pytest.raises(ConfigError, match="milestones"):
        load_config(overrides=["train.milestones=[0.8, 0.5]"])
