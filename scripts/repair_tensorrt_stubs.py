"""Copy the installed ``tensorrt-stubs`` into a folder mypy can read, fixing their syntax errors.

``tensorrt-stubs`` (10.13.0.35.1, the newest published) is generated from the
bindings and a few of its signatures are not valid Python: a parameter named
``in`` (a keyword) and a parameter without a default after ones with defaults.
mypy stops at the first syntax error, so nothing that imports tensorrt could
be checked. This script copies the ``tensorrt`` and ``tensorrt_bindings`` stub
packages to ``OUT`` (mypy.ini's ``mypy_path``) and repairs exactly those two
kinds of line, leaving every other signature as published. It fails loudly on
any other syntax error, so a new stubs release is looked at, not guessed at.

Usage: python scripts/repair_tensorrt_stubs.py OUT
"""

from __future__ import annotations

import ast
import keyword
import re
import shutil
import sys
import sysconfig
from pathlib import Path

PACKAGES = ('tensorrt', 'tensorrt_bindings')
# a keyword used as a parameter name: `(in: ...` or `, in: ...`
KEYWORD_PARAMETER = re.compile(r'([(,]\s*)(' + '|'.join(keyword.kwlist) + r')(\s*:)')
MAX_REPAIRS = 100  # the 10.13 stubs need 6; far more means a different problem


def split_parameters(text: str) -> list[str]:
    """Split a parameter list at its top-level commas."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char in '([{'
        depth -= char in ')]}'
        if char == ',' and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def add_missing_defaults(line: str) -> str:
    """Give `= ...` to parameters that follow one with a default (stubs only)."""
    match = re.match(r'(\s*def \w+\()(.*)(\)\s*(->.*)?:.*)$', line)
    if not match:
        return line
    head, params, tail = match.group(1), match.group(2), match.group(3)
    fixed, seen_default = [], False
    for param in split_parameters(params):
        bare = param.strip()
        if bare.startswith('*') or bare == '/':
            seen_default = False if bare.startswith('*') else seen_default
        elif '=' in bare:
            seen_default = True
        elif seen_default and bare:
            param = f'{param} = ...'
        fixed.append(param)
    return head + ','.join(fixed) + tail


def repair_line(line: str) -> str:
    return add_missing_defaults(KEYWORD_PARAMETER.sub(r'\1\2_\3', line))


def repair(text: str, name: str) -> tuple[str, int]:
    """Return ``text`` with its syntax errors repaired and how many lines changed."""
    lines = text.split('\n')
    for repairs in range(MAX_REPAIRS + 1):
        try:
            ast.parse('\n'.join(lines), filename=name)
            return '\n'.join(lines), repairs
        except SyntaxError as error:
            index = (error.lineno or 0) - 1
            fixed = repair_line(lines[index]) if 0 <= index < len(lines) else None
            if fixed is None or fixed == lines[index]:
                raise SystemExit(f'{name}:{error.lineno}: syntax error this script does not '
                                 f'know how to repair: {error.msg}\n  {error.text}') from error
            lines[index] = fixed
    raise SystemExit(f'{name}: more than {MAX_REPAIRS} syntax errors; not repairing')


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(args[0])
    site = Path(sysconfig.get_paths()['purelib'])
    for package in PACKAGES:
        source = site / package
        if not (source / '__init__.pyi').is_file():
            raise SystemExit(f'{source}/__init__.pyi not found: install requirements/'
                             'typecheck-nodeps.txt (pip install --no-deps tensorrt-stubs)')
        target = out / package
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for stub in sorted(source.glob('*.pyi')):
            text, repairs = repair(stub.read_text(), str(stub))
            (target / stub.name).write_text(text)
            if repairs:
                print(f'{stub.name}: repaired {repairs} line(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
