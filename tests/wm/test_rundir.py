"""The run directory and its config.json: clear errors, and fixed fields that cannot change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wm.config import EXTRACT_DATA_FIELDS
from wm.errors import WMError
from wm.rundir import (
    CONFIG_NAME,
    CONFIG_VERSION,
    load_config,
    make_stage_dir,
    run_env,
    save_stage_config,
)


def extract_values(**changes) -> dict:
    values = {"run": "r", "env": "doom", "preset": "quick", "episodes": 64, "policy": "hold",
              "max_steps": 2100, "seed": 0, "log_every": 10.0}
    return {**values, **changes}


def save(run: Path, **changes) -> None:
    save_stage_config(run, "extract", extract_values(**changes), EXTRACT_DATA_FIELDS)


def read_config(run: Path) -> dict:
    return json.loads((run / CONFIG_NAME).read_text())


# ---------------------------------------------------------------- make_stage_dir


def test_make_stage_dir_creates_nested_dirs(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    stage = make_stage_dir(run, "record")
    assert stage == run / "record"
    assert stage.is_dir()
    assert list(stage.iterdir()) == []  # the write check leaves nothing behind
    assert make_stage_dir(str(run), "record") == stage  # again: fine


def test_make_stage_dir_run_is_a_file(tmp_path):
    run = tmp_path / "run"
    run.write_text("oops")
    with pytest.raises(WMError) as info:
        make_stage_dir(run, "record")
    assert str(run) in str(info.value)
    assert "not a directory" in str(info.value)
    assert run.read_text() == "oops"


def test_make_stage_dir_parent_is_a_file(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("oops")
    run = parent / "run"
    with pytest.raises(WMError) as info:
        make_stage_dir(run, "record")
    assert str(run) in str(info.value)


def test_make_stage_dir_stage_is_a_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "record").write_text("oops")
    with pytest.raises(WMError) as info:
        make_stage_dir(run, "record")
    assert str(run / "record") in str(info.value)


# ---------------------------------------------------------------- config.json


def test_save_stage_config_writes_config(tmp_path):
    assert load_config(tmp_path) is None
    assert run_env(tmp_path) is None
    save(tmp_path)
    config = read_config(tmp_path)
    assert config == {"config_version": CONFIG_VERSION, "env": "doom",
                      "stages": {"extract": extract_values()}}
    assert load_config(tmp_path) == config
    assert run_env(tmp_path) == "doom"
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_NAME]  # no temp file left


def test_same_values_again_are_accepted(tmp_path):
    save(tmp_path)
    save(tmp_path)
    assert read_config(tmp_path)["stages"]["extract"] == extract_values()


def test_non_fixed_fields_may_change(tmp_path):
    save(tmp_path)
    save(tmp_path, episodes=1000, log_every=1.0, preset="small")
    stage = read_config(tmp_path)["stages"]["extract"]
    assert stage["episodes"] == 1000
    assert stage["log_every"] == 1.0


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [("policy", "uniform", "policy"), ("max_steps", 100, "max-steps"), ("seed", 1, "seed")],
)
def test_fixed_field_change_is_refused(tmp_path, field, value, flag):
    save(tmp_path)
    before = (tmp_path / CONFIG_NAME).read_text()
    with pytest.raises(WMError) as info:
        save(tmp_path, **{field: value})
    message = str(info.value)
    assert f"{flag}=" in message
    assert repr(value) in message
    assert str(tmp_path / CONFIG_NAME) in message
    assert (tmp_path / CONFIG_NAME).read_text() == before


def test_other_env_is_refused(tmp_path):
    save(tmp_path)
    with pytest.raises(WMError) as info:
        save(tmp_path, env="carracing", policy="brownian", max_steps=1000)
    assert "'doom'" in str(info.value) and "'carracing'" in str(info.value)
    assert run_env(tmp_path) == "doom"


def test_other_env_is_refused_for_any_stage(tmp_path):
    save(tmp_path)
    with pytest.raises(WMError) as info:
        save_stage_config(tmp_path, "vae", {"env": "carracing", "epochs": 1}, ("epochs",))
    assert "'doom'" in str(info.value) and "'carracing'" in str(info.value)
    assert "vae" not in read_config(tmp_path)["stages"]


def test_other_stages_are_kept(tmp_path):
    save(tmp_path)
    save_stage_config(tmp_path, "vae", {"env": "doom", "epochs": 1}, ("epochs",))
    save(tmp_path, episodes=5)
    stages = read_config(tmp_path)["stages"]
    assert stages["vae"] == {"env": "doom", "epochs": 1}
    assert stages["extract"]["episodes"] == 5


@pytest.mark.parametrize("text", ["{broken", "", "[1, 2]", '{"env": "doom"}'])
def test_load_config_rejects_bad_config(tmp_path, text):
    (tmp_path / CONFIG_NAME).write_text(text)
    with pytest.raises(WMError) as info:
        load_config(tmp_path)
    assert str(tmp_path / CONFIG_NAME) in str(info.value)
    with pytest.raises(WMError):
        save(tmp_path)
