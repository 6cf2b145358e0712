"""``python -m training <command> ...``: one entry point, one module per command.

Each command names a module and its entry function, ``(argv: list[str]) -> int``,
which gets the arguments after the command; the module is imported only when
its command runs, so ``synth`` does not pay for importing Lightning.
"""

from __future__ import annotations

import importlib
import os
import sys

# OpenMP threads that busy-wait collapse throughput when the CPU is shared
# (measured here: a training step of the default model took 18 s instead of
# 0.7 s next to one other busy process). Set before torch loads libgomp.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

# command: (module, entry function, help); the function gets the arguments after the command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    'synth': ('training.data.synth.cli', 'main',
              'write procedural scenes in KITTI, NYU, Cityscapes or rosbag format'),
    'fit': ('training.cli', 'fit_main',
            'train a recipe: fit --config training/configs/<recipe>.yaml'),
    'validate': ('training.cli', 'validate_main', 'validate a checkpoint with the project metrics'),
    'test': ('training.benchmark', 'main', 'score a checkpoint or ONNX model on a test split: '
             'test MODEL --protocol kitti_eigen|kitti_benchmark|nyu_eigen --out DIR'),
    'export': ('training.export', 'export_main', 'export a checkpoint to ONNX with its model card'),
    'card': ('training.export', 'card_main', 'print the model card of an exported ONNX model'),
    'real-check': ('training.real_check', 'main',
                   'score an exported model on real KITTI frames kept outside the project'),
    'rule': ('training.bundling_rule', 'main', 'the bundling rule: does a candidate replace the '
             'bundled model (real-check --textured summaries; --seeds: every seed)'),
    'texture-probe': ('training.texture_probe', 'main', 'how far a model moves depth when fine '
                      'texture is laid on some classes of generated frames'),
    'average-weights': ('training.average_weights', 'main', 'exports of one network, '
                        'weight-averaged into another (a stage and its start, or a soup of '
                        'several stages)'),
    'layout-probe': ('training.layout_probe', 'main', 'depth from the segmentation alone: '
                     'a small network on class ids, scored beside the model on real-check sets'),
    'compare-frames': ('training.frame_compare', 'main', 'two models on the same real-check '
                       'frames, paired by frame: the difference, its bootstrap interval, '
                       'a sign test'),
    'window-check': ('training.window_check', 'main', "a checkpoint's depth on its training "
                     'windows against the whole input it runs on'),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f'  {name:<{width}}  {help_}' for name, (_, _, help_) in COMMANDS.items()]
    return 'usage: python -m training <command> [options]\n\ncommands:\n' + '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f'unknown command {command!r}\n\n{usage()}', file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[command]
    entry = getattr(importlib.import_module(module), function)
    return int(entry(rest) or 0)


if __name__ == '__main__':
    sys.exit(main())
