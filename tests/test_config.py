import pytest
import yaml

from safecompress.config import PRESETS, RunConfig, build_config, dump_yaml, load_config, parse_override, preset_dict
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


def test_method_params_are_validated_with_did_you_mean():
    cfg = load_config(overrides=["method.name=gmp", "method.params={prune_end: 0.5}"])
    assert cfg.method.params == {"prune_end": 0.5}
    from safecompress.methods import METHODS

    p = METHODS.get("gmp").params(cfg)
    assert (p.prune_start, p.prune_end) == (0.1, 0.5)
    with pytest.raises(ConfigError, match=r"no parameter 'prune_strat' \(did you mean 'prune_start'\?\)"):
        load_config(overrides=["method.name=gmp", "method.params={prune_strat: 0.2}"])
    with pytest.raises(ConfigError, match="method 'rigl' has no parameter 'prune_end'.*its parameters: none"):
        load_config(overrides=["method.name=rigl", "method.params={prune_end: 0.5}"])
    with pytest.raises(ConfigError, match="its parameters: temperature, keep"):
        load_config(overrides=["method.name=dmp", "method.params={alpha: 0.5}"])
    with pytest.raises(ConfigError, match="prune_end"):
        load_config(overrides=["method.name=oneshot", "method.params={prune_end: 1.5}"])


def test_legacy_sparse_method_keys_move_to_method_params_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="safecompress.config"):
        cfg = load_config(
            overrides=["method.name=distill", "sparse.distill_alpha=0.3", "sparse.prune_end=0.4", "sparse.density=0.2"]
        )
    assert cfg.method.params == {"alpha": 0.3}  # prune_end: never read by distill, dropped
    assert cfg.sparse.density == 0.2 and "distill_alpha" not in cfg.sparse.model_dump()
    assert "sparse.distill_alpha is deprecated" in caplog.text and "sparse.prune_end is deprecated" in caplog.text
    # an explicit method.params entry wins over the old key
    cfg = load_config(overrides=["method.name=gmp", "sparse.prune_end=0.4", "method.params={prune_end: 0.5}"])
    assert cfg.method.params == {"prune_end": 0.5}
    # the resolved config (config.yaml of a run) shows it under method.params and reads back the same
    cfg = load_config(overrides=["method.name=mest", "sparse.mest_grad_weight=0.05"])
    assert cfg.to_dict()["method"]["params"] == {"grad_weight": 0.05}
    assert build_config(yaml.safe_load(dump_yaml(cfg))) == cfg
    with pytest.raises(ConfigError, match="keep"):  # old keys are validated by the new model
        load_config(overrides=["method.name=dmp", "sparse.dmp_keep=2"])


def test_attack_params_share_the_parameter_check():
    with pytest.raises(ConfigError, match=r"attack 'lira' has no parameter 'onlin' \(did you mean 'online'\?\)"):
        load_config(overrides=["audit.attack_params={lira: {onlin: false}}"])


def test_a_config_written_before_method_params_compares_equal_when_resuming():
    """An older version recorded every single-method default under ``sparse``; resuming such a run folder
    with the same settings must not be refused as a different configuration, while a changed value still is."""
    from safecompress.config import load_config
    from safecompress.runsetup import _as_run, _config_differences

    legacy = {"prune_start": 0.1, "prune_end": 0.6, "mest_grad_weight": 0.01, "distill_alpha": 0.7}
    legacy |= {"distill_temperature": 4.0, "dmp_keep": 1.0}
    for method, given in (("gmp", {"prune_end": 0.6}), ("rigl", {})):
        cfg = load_config(preset="ci", overrides=[f"method.name={method}", f"method.params={given}"])
        old = cfg.to_dict()
        old["method"] = {k: v for k, v in old["method"].items() if k != "params"}
        old["sparse"] = {**old["sparse"], **legacy}
        assert _config_differences(_as_run(old), _as_run(cfg.to_dict())) == []
    old["method"]["name"] = "gmp"
    cfg = load_config(preset="ci", overrides=["method.name=gmp", "method.params={prune_end: 0.7}"])
    assert _config_differences(_as_run(old), _as_run(cfg.to_dict())) == ["method.params.prune_end: 0.6 -> 0.7"]


def test_too_few_canaries_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="too few.*at least 20"):
        build_config({"audit": {"canaries": 8}})
    assert build_config({"audit": {"canaries": 20}}).audit.canaries == 20
    assert build_config({"audit": {"canaries": 0}}).audit.canaries == 0
