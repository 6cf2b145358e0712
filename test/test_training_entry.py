"""``python -m training <command>``: every command resolves, and gets only what follows it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from training.__main__ import COMMANDS, main


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_every_command_names_a_function_of_its_module(command: str) -> None:
    module, function, help_ = COMMANDS[command]
    assert callable(getattr(importlib.import_module(module), function)), command
    assert help_


def test_help_lists_every_command_and_an_unknown_one_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['--help']) == 0
    listed = capsys.readouterr().out
    assert all(f'  {command} ' in listed for command in COMMANDS)
    assert main(['no-such-command']) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_a_command_gets_the_arguments_after_its_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Were 'compare-frames' passed on, argparse would take it for the BEFORE folder.
    missing = tmp_path / 'missing'
    assert main(['compare-frames', str(missing), str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err
