"""Help that teaches: every command's --help shows defaults, an example and the exit codes,
in plain text (no reStructuredText markup); --version prints the package version."""

from __future__ import annotations

import importlib
import re
from importlib import metadata

import pytest

COMMANDS = ["run", "status", "describe", "clean", "report", "compare", "weights", "prepare"]
#: commands whose options live on subcommands: the defaults are shown in this one's help
SUBCOMMAND = {"weights": "fetch", "prepare": "corrupt"}


def _main(name: str):
    module = importlib.import_module(f"benchmark.{name}")
    return module.main


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_defaults_an_example_and_exit_codes(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _main(name)(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n  python -m benchmark." in out
    assert "exit status: 0" in out and " 2 " in out.split("exit status:")[1]
    if name in SUBCOMMAND:
        with pytest.raises(SystemExit):
            _main(name)([SUBCOMMAND[name], "--help"])
        out = capsys.readouterr().out
    assert re.search(r"\(default:\s", out)
    for markup in ("``", ":mod:", ":func:", ":class:", ":meth:"):
        assert markup not in out, (markup, out)


@pytest.mark.parametrize("name", COMMANDS)
def test_version_is_the_packages(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _main(name)(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip().endswith(metadata.version("robust-det-bench"))


def test_run_help_lists_set_only_and_root(capsys) -> None:
    with pytest.raises(SystemExit):
        _main("run")(["--help"])
    out = capsys.readouterr().out
    for option in ("--set KEY=VALUE", "--only", "--root DIR"):
        assert option in out
