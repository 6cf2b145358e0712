"""The package's rooms and their import directions (docs/layout.md), read from the source.

Every ``import`` statement counts, at module level or inside a function:
an import deferred into a function is still a dependency.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'mtdepth_ros'
ROOMS = ('conversions', 'inference', 'node', 'evaluation')
# room -> the rooms it may import (besides itself)
ALLOWED = {
    'conversions': set(),
    'inference': {'conversions'},
    'node': {'inference', 'conversions'},
    'evaluation': {'inference', 'conversions'},
}
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = module_name(path).split('.')
    if path.name != '__init__.py':
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f'{base}.{alias.name}' for alias in node.names)
    return names


def package_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob('*.py')}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path) if m in modules and m != name}
    return graph


def room_of(module: str) -> str | None:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def test_every_module_lives_in_a_room() -> None:
    loose = [module_name(p) for p in PACKAGE.glob('*.py') if p.name != '__init__.py']
    assert loose == [], f'modules outside the four rooms: {loose}'
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / '__init__.py').is_file()) == \
        sorted(ROOMS)


@pytest.mark.parametrize('room', ROOMS)
def test_each_room_says_what_it_holds_and_may_import(room: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / room / '__init__.py').read_text()))
    assert doc and 'May import' in doc


def test_imports_point_down_only() -> None:
    wrong = []
    for module, imports in package_graph().items():
        room = room_of(module)
        for target in imports:
            other = room_of(target)
            if room and other and other != room and other not in ALLOWED[room]:
                wrong.append(f'{module} -> {target}')
    assert wrong == [], 'forbidden directions:\n' + '\n'.join(sorted(wrong))


def test_nothing_in_the_package_imports_training() -> None:
    offenders = [module_name(p) for p in PACKAGE.rglob('*.py')
                 if any(m == 'training' or m.startswith('training.') for m in imported_modules(p))]
    assert offenders == []


def test_conversions_and_inference_never_import_rclpy() -> None:
    offenders = [module_name(p) for room in ('conversions', 'inference')
                 for p in (PACKAGE / room).rglob('*.py')
                 if any(m == 'rclpy' or m.startswith('rclpy.') for m in imported_modules(p))]
    assert offenders == []


def test_no_import_cycle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(package_graph()).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f'import cycle: {" -> ".join(error.args[1])}')


def test_no_module_over_400_lines() -> None:
    long = {module_name(p): n for p in PACKAGE.rglob('*.py')
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_the_node_runs_without_the_evaluation_extras() -> None:
    # A vehicle install has no matplotlib, rosbags or mcap: the node's module and
    # everything it imports must load without them.
    script = textwrap.dedent('''
        import importlib.abc, sys
        BLOCKED = ('matplotlib', 'rosbags', 'mcap', 'torch', 'training')
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in BLOCKED:
                    raise ImportError(f'{name} is not installed (blocked by the test)')
        sys.meta_path.insert(0, Block())
        import mtdepth_ros.node.mtdepth_node
        import mtdepth_ros.inference.backends.build_engine
        loaded = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)
        assert not loaded, loaded
        print('ok')
    ''')
    result = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'
