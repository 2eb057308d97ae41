"""The run directory and its config.json: clear errors, and fixed fields that cannot change."""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from wm.core.config import EXTRACT_DATA_FIELDS
from wm.core.errors import WMError
from wm.data.rundir import (
    CONFIG_LOCK,
    CONFIG_NAME,
    CONFIG_VERSION,
    es_dir,
    eval_names,
    final_controller,
    final_round,
    first_missing,
    load_config,
    make_stage_dir,
    run_env,
    save_stage_config,
    start_stage,
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_LOCK, CONFIG_NAME]  # no temp file left


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


# ---------------------------------------------------------------- stages saving at once


def _save_many(run: str, stage: str, times: int) -> int:
    """One process saving its stage's entry ``times`` times, as a stage started again and again."""
    for i in range(times):
        save_stage_config(run, stage, {"env": "doom", "stage": stage, "i": i}, ("stage",))
    return times


def _read_until(run: str, stop: str, seconds: float) -> int:
    """Read config.json until ``stop`` exists; once it exists, every read must be a whole config
    (never missing, empty or half-written). Touches RUN/reading when it starts."""
    reads, seen, deadline = 0, False, time.monotonic() + seconds
    Path(run, "reading").touch()
    while not Path(stop).exists() and time.monotonic() < deadline:
        config = load_config(run)  # (raises on an empty or half-written file)
        if config is None:  # (before the first save only)
            assert not seen, "config.json vanished"
            continue
        seen = True
        assert config["env"] == "doom"
        reads += 1
    return reads


def test_stages_saving_the_config_at_once_keep_every_entry(tmp_path):
    stop, stages, times = tmp_path / "stop", ["extract", "vae", "rnn", "train"], 25
    with ProcessPoolExecutor(len(stages) + 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        reader = pool.submit(_read_until, str(tmp_path), str(stop), 60.0)
        deadline = time.monotonic() + 60  # (the writers start once the reader reads)
        while not (tmp_path / "reading").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        writers = [pool.submit(_save_many, str(tmp_path), stage, times) for stage in stages]
        assert [w.result(timeout=120) for w in writers] == [times] * len(stages)  # (errors raise here)
        stop.touch()
        assert reader.result(timeout=120) > 0
    saved = read_config(tmp_path)["stages"]
    assert saved == {stage: {"env": "doom", "stage": stage, "i": times - 1} for stage in stages}
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- start_stage (--fresh)


def stage_outputs(tmp_path: Path) -> Path:
    """A run whose V stage has outputs from an earlier training."""
    save_stage_config(tmp_path, "vae", {"env": "doom", "lr": 1.0}, ("lr",))
    out = make_stage_dir(tmp_path, "vae")
    (out / "vae.pt").write_bytes(b"weights")
    return out


def test_fresh_moves_earlier_outputs_aside_and_may_change_fixed_fields(tmp_path, capsys):
    out = stage_outputs(tmp_path)
    start_stage(tmp_path, "vae", out, {"env": "doom", "lr": 2.0}, ("lr",), fresh=True)
    previous = [p for p in out.iterdir() if p.name.startswith("previous-")]
    assert len(previous) == 1 and (previous[0] / "vae.pt").read_bytes() == b"weights"
    assert read_config(tmp_path)["stages"]["vae"]["lr"] == 2.0
    assert "earlier outputs moved" in capsys.readouterr().out


@pytest.mark.parametrize("fresh", [True, False])
def test_a_refused_start_leaves_the_run_as_it_was(tmp_path, fresh):
    out = stage_outputs(tmp_path)
    before = (tmp_path / CONFIG_NAME).read_text()
    values = {"env": "carracing", "lr": 1.0} if fresh else {"env": "doom", "lr": 2.0}
    with pytest.raises(WMError, match="carracing" if fresh else "lr=1.0"):
        start_stage(tmp_path, "vae", out, values, ("lr",), fresh=fresh)
    assert [p.name for p in out.iterdir()] == ["vae.pt"]  # nothing moved aside
    assert (tmp_path / CONFIG_NAME).read_text() == before


def test_the_runs_controller_is_the_newest_rounds(tmp_path):
    """After iterative training only the newest round's C fits the run's M: "best" names it."""
    assert final_round(tmp_path) == 0 and final_controller(tmp_path) == tmp_path / "es" / "best.json"
    for directory in ("es", "es-round-1", "es-round-2", "es-round-4"):  # (4: not after a gap)
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "best.json").write_text("{}")
    assert final_round(tmp_path) == 2
    assert final_controller(tmp_path) == tmp_path / "es-round-2" / "best.json"
    assert es_dir(0) == "es" and eval_names(2) == ("real-round-2", "random-round-2")
    (tmp_path / "es-round-1" / "best.json").unlink()
    assert final_round(tmp_path) == 0


def test_a_missing_input_names_the_first_stage_not_run_and_the_command_for_all(tmp_path):
    run = tmp_path / "run"
    assert "is extract: run `python -m wm.extract" in first_missing(run)
    for output in ("record/summary.json", "vae/vae.pt"):
        (run / output).parent.mkdir(parents=True)
        (run / output).write_text("{}")
    config = {"version": CONFIG_VERSION, "env": "carracing", "stages": {}}
    (run / "config.json").write_text(json.dumps(config))
    said = first_missing(run)
    assert "is series: run `python -m wm.series" in said
    assert f"`bash launch/carracing.bash --run {run}`" in said

