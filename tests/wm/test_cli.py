"""Command-line parsing: defaults < presets < flags, and which fields the user typed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from wm.core import cli
from wm.core.config import EXTRACT_DATA_FIELDS, PRESETS, ExtractConfig
from wm.core.errors import WMError
from wm.data.rundir import save_stage_config
from wm.stages.extract import parse_config


@dataclass
class Toy:
    """A stage with one field of each kind."""

    name: str = cli.arg(None, "a required name", required=True)
    size: int = cli.arg(3, "a size")
    rate: float = cli.arg(0.5, "a rate")
    mode: str = cli.arg("fast", "a mode", choices=["fast", "slow"])
    limit: int | None = cli.arg(None, "an optional limit")
    verbose: bool = cli.arg(False, "talk more")


def toy_presets(typed: dict) -> dict:
    # The slow mode's preset: a bigger size and a limit.
    return {"size": 10, "limit": 7} if typed.get("mode") == "slow" else {}


def parse_toy(*argv: str, presets=toy_presets):
    return cli.parse(Toy, list(argv), "toy", "A toy stage.", presets)


def test_dataclass_defaults():
    cfg, typed = parse_toy("--name", "x")
    assert cfg == Toy(name="x", size=3, rate=0.5, mode="fast", limit=None, verbose=False)
    assert typed == {"name"}


def test_preset_overrides_defaults():
    cfg, typed = parse_toy("--name", "x", "--mode", "slow")
    assert (cfg.size, cfg.limit, cfg.rate) == (10, 7, 0.5)
    assert typed == {"name", "mode"}


def test_flags_override_presets():
    cfg, typed = parse_toy("--name", "x", "--mode", "slow", "--size", "4", "--limit", "2")
    assert (cfg.size, cfg.limit) == (4, 2)
    assert isinstance(cfg.size, int) and isinstance(cfg.limit, int)
    assert typed == {"name", "mode", "size", "limit"}


def test_types_and_bool_flags():
    cfg, typed = parse_toy("--name", "x", "--rate", "2", "--verbose")
    assert cfg.rate == 2.0 and isinstance(cfg.rate, float)
    assert cfg.verbose is True
    assert typed == {"name", "rate", "verbose"}
    cfg, typed = parse_toy("--name", "x", "--no-verbose")
    assert cfg.verbose is False
    assert typed == {"name", "verbose"}


def test_typed_value_equal_to_default_still_counts_as_typed():
    _, typed = parse_toy("--name", "x", "--size", "3")
    assert typed == {"name", "size"}


def test_no_presets():
    cfg, typed = parse_toy("--name", "x", "--mode", "slow", presets=None)
    assert (cfg.size, cfg.limit) == (3, None)
    assert typed == {"name", "mode"}


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--name", "x", "--mode", "medium"], "invalid choice"),
        (["--name", "x", "--size", "big"], "invalid int"),
        (["--name", "x", "--colour", "red"], "unrecognized"),
        (["--size", "4"], "--name"),
    ],
)
def test_usage_errors_exit_2(argv, complaint, capsys):
    with pytest.raises(SystemExit) as info:
        parse_toy(*argv)
    assert info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        parse_toy("--help")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--limit" in out and "(default: 3)" in out


def test_extract_config_layers(tmp_path):
    argv = ["--run", str(tmp_path), "--env", "carracing", "--preset", "quick", "--episodes", "3"]
    cfg = parse_config(argv)
    assert cfg.episodes == 3  # flag
    assert (cfg.policy, cfg.max_steps) == ("brownian", 300)  # the quick carracing preset
    assert (cfg.seed, cfg.log_every) == (0, 10.0)  # dataclass defaults
    assert "--max-steps" in cli.build_parser(ExtractConfig, "extract", "").format_help()


def test_extract_config_defaults_come_from_the_run(tmp_path):
    assert parse_config(["--run", str(tmp_path)]).env == "doom"  # a new run: the default env
    saved = {"env": "carracing", "preset": "quick", "episodes": 5, "policy": "uniform",
             "max_steps": 77, "seed": 9, "log_every": 1.0, "run": "elsewhere"}
    save_stage_config(tmp_path, "extract", saved, EXTRACT_DATA_FIELDS)
    cfg = parse_config(["--run", str(tmp_path)])
    assert (cfg.env, cfg.episodes, cfg.policy, cfg.max_steps, cfg.seed) == ("carracing", 5, "uniform", 77, 9)
    assert cfg.run == str(tmp_path)  # never taken from the file
    assert parse_config(["--run", str(tmp_path), "--episodes", "8"]).episodes == 8  # flags still win
    fresh = parse_config(["--run", str(tmp_path), "--preset", "small"])  # a preset asked for: its values
    small = PRESETS["carracing"]["small"]["extract"]
    assert (fresh.episodes, fresh.policy, fresh.max_steps) == (small["episodes"], "brownian", 1000)


def test_extract_config_unknown_choice_exits_2(tmp_path):
    for flag, value in (("--env", "pong"), ("--policy", "greedy"), ("--preset", "huge")):
        with pytest.raises(SystemExit) as info:
            cli.parse(ExtractConfig, ["--run", str(tmp_path), "--env", "doom", flag, value], "x", "")
        assert info.value.code == 2


def test_np_is_refused_when_negative_or_under_a_launcher(monkeypatch):
    from wm.core.cli import check_np

    check_np(0)
    check_np(2)
    with pytest.raises(WMError, match="--np must be >= 0"):
        check_np(-1)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    with pytest.raises(WMError, match="starts its own mpirun"):
        check_np(2)
    check_np(0)  # (under a launcher, the ranks it started)
