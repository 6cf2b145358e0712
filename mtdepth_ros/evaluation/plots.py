"""Report plots as PNG with matplotlib's object API on the Agg canvas (no display, no pyplot)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110
WIDE = (8.0, 4.0)  # inches
TALL = (8.0, 6.0)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    return path


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.array([v if v is not None and math.isfinite(v) else np.nan for v in values])


def error_vs_distance(curve: Mapping[str, Sequence[float]], path: Path) -> Path:
    """MAE, RMSE and AbsRel per ground-truth distance bin, with the pixel count beneath."""
    centre = np.asarray(curve['centre_m'])
    figure = Figure(figsize=TALL)
    metres, relative, counts = figure.subplots(3, 1, sharex=True,
                                               gridspec_kw={'height_ratios': [3, 2, 1]})
    metres.plot(centre, _finite(curve['mae']), 'o-', label='MAE')
    metres.plot(centre, _finite(curve['rmse']), 's-', label='RMSE')
    metres.set_ylabel('error (m)')
    metres.legend()
    metres.grid(alpha=0.3)
    relative.plot(centre, _finite(curve['abs_rel']), 'o-', color='tab:red', label='AbsRel')
    relative.set_ylabel('AbsRel')
    relative.grid(alpha=0.3)
    width = centre[1] - centre[0] if centre.size > 1 else 1.0
    counts.bar(centre, curve['pixels'], width=width * 0.9, color='grey')
    counts.set_ylabel('pixels')
    counts.set_xlabel('ground-truth depth (m)')
    metres.set_title('Depth error vs distance (all frames pooled)')
    return _save(figure, path)


def error_histogram(edges: np.ndarray, counts: np.ndarray, path: Path) -> Path:
    """Histogram of the signed relative error (pred - gt) / gt; end bins hold the outliers."""
    figure = Figure(figsize=WIDE)
    axes = figure.subplots()
    total = max(int(counts.sum()), 1)
    axes.stairs(counts / total, edges * 100, fill=True, alpha=0.7)
    axes.axvline(0, color='black', linewidth=0.8)
    axes.set_xlabel('(prediction - ground truth) / ground truth (%), clipped to +-100 %')
    axes.set_ylabel('fraction of pixels')
    axes.set_title(f'Signed relative depth error ({total} pixels)')
    return _save(figure, path)


def per_class_iou(ious: Mapping[str, float], path: Path) -> Path:
    """Horizontal bars of IoU per class; classes absent from the data are marked n/a."""
    names = list(ious)
    values = _finite(list(ious.values()))
    figure = Figure(figsize=(8.0, max(2.5, 0.3 * len(names) + 1)))
    axes = figure.subplots()
    positions = np.arange(len(names))
    axes.barh(positions, np.nan_to_num(values), color='tab:blue')
    for y, value in zip(positions, values):
        axes.text(0.01 if np.isnan(value) else value + 0.01, float(y),
                  'n/a' if np.isnan(value) else f'{value:.2f}', va='center', fontsize=8)
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.1)
    axes.set_xlabel('IoU')
    present = values[~np.isnan(values)]
    mean = f'{present.mean():.3f}' if present.size else 'n/a'
    axes.set_title(f'Per-class IoU (mIoU {mean})')
    return _save(figure, path)


def latency_over_time(times_s: Sequence[float], latency_s: Sequence[float],
                      dropped_s: Sequence[float], path: Path) -> Path:
    """Stamp-to-output latency of each frame over bag time; dropped frames as marks."""
    figure = Figure(figsize=WIDE)
    axes = figure.subplots()
    axes.plot(times_s, np.asarray(latency_s) * 1000, '.-', label='latency')
    if len(dropped_s):
        axes.plot(dropped_s, np.zeros(len(dropped_s)), 'x', color='tab:red',
                  label=f'dropped ({len(dropped_s)})')
    axes.set_xlabel('bag time (s)')
    axes.set_ylabel('latency (ms)')
    axes.set_title('Live replay: input to node output')
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)
