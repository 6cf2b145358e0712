"""scripts/refiner_rule.sh: the refiner's trees and rule, one command each (its steps run
the project's commands, tested where they live; here, that the script parses and says how
to run it)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from training_helpers import REPO

SCRIPT = REPO / 'scripts' / 'refiner_rule.sh'

pytestmark = pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')


def test_the_script_parses() -> None:
    subprocess.run(['bash', '-n', str(SCRIPT)], check=True)


@pytest.mark.parametrize('arguments', [[], ['judge', 'only-a-name'], ['trees', 'extra'],
                                       ['chain', 'only-a-name'], ['frobnicate']])
def test_a_wrong_call_gets_the_usage(arguments: list[str]) -> None:
    done = subprocess.run([str(SCRIPT), *arguments], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert 'scripts/refiner_rule.sh judge NAME CANDIDATE.onnx [BASELINE.onnx]' in done.stderr
    assert 'scripts/refiner_rule.sh trees' in done.stderr
    assert 'scripts/refiner_rule.sh chain NAME BASE.onnx' in done.stderr
    assert 'set -euo' not in done.stderr  # the comment block only


def test_a_chain_on_a_missing_model_is_refused_before_it_writes(tmp_path) -> None:
    work = tmp_path / 'work'
    done = subprocess.run([str(SCRIPT), 'chain', 'x', str(tmp_path / 'absent.onnx')],
                          capture_output=True, text=True, timeout=60,
                          env={'PATH': '/usr/bin:/bin', 'WORK': str(work)})
    assert done.returncode == 2
    assert f'no model {tmp_path / "absent.onnx"}' in done.stderr
    assert not work.exists()
