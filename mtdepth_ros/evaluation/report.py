"""The report folder: metrics.json, frames.csv, report.md and report.html.

The Markdown and HTML reports are rendered from one list of blocks (headings,
paragraphs, lists, tables, images), so they always say the same thing.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtdepth_ros.evaluation.class_errors import MODEL_SOURCE
from mtdepth_ros.evaluation.metrics import ALL_DEPTH_METRICS
from mtdepth_ros.evaluation.scoring import FrameResult

METRICS_JSON = 'metrics.json'
FRAMES_CSV = 'frames.csv'
REPORT_MD = 'report.md'
REPORT_HTML = 'report.html'
MISSING = '-'

METRIC_LABELS = {
    'silog': 'SILog', 'abs_rel': 'AbsRel', 'sq_rel': 'SqRel (m)', 'rmse': 'RMSE (m)',
    'rmse_log': 'RMSE log', 'log10': 'log10', 'mae': 'MAE (m)', 'd1': 'd<1.25',
    'd2': 'd<1.25^2', 'd3': 'd<1.25^3', 'sq_err_rel': 'sqErrorRel', 'irmse': 'iRMSE (1/km)',
    'imae': 'iMAE (1/km)'}
LOWER_IS_BETTER = 'lower is better except the d<1.25^k accuracies'


@dataclass
class Report:
    """What an evaluation produced: the numbers and where the files are."""

    out_dir: Path
    metrics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def depth(self) -> dict[str, float]:
        """The headline depth metrics (protocol's averaging, all ranges); {} if none scored."""
        depth = self.metrics.get('depth') or {}
        return dict(depth.get('headline') or {})

    @property
    def miou(self) -> float | None:
        segmentation = self.metrics.get('segmentation') or {}
        value = segmentation.get('miou')
        if value is None or not segmentation.get('frames_scored'):
            return None
        return float(value)


def fmt(value: Any) -> str:
    """A number for a table: '-' for missing, fewer decimals for large values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f'{value:.1f}' if abs(value) >= 100 else f'{value:.4f}'
    return str(value)


def json_safe(value: Any) -> Any:
    """NaN and inf -> None, tuples -> lists, Paths -> str, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, 'item') and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    return value


def write_metrics_json(out_dir: Path, metrics: Mapping[str, Any]) -> Path:
    path = out_dir / METRICS_JSON
    path.write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False) + '\n')
    return path


def write_frames_csv(out_dir: Path, rows: Sequence[FrameResult]) -> Path:
    timing_keys = sorted({key for row in rows for key in row.timing})
    header = (['index', 'stamp_s', 'status', 'depth_pixels', 'missing_pixels', 'median_scale']
              + list(ALL_DEPTH_METRICS) + ['miou', 'pixel_accuracy'] + timing_keys + ['notes'])
    path = out_dir / FRAMES_CSV
    with open(path, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in sorted(rows, key=lambda r: r.index):
            writer.writerow(
                [row.index, f'{row.stamp_s:.9f}', row.status, row.depth_pixels,
                 row.missing_pixels, _csv(row.median_scale)]
                + [_csv(row.depth.get(k)) for k in ALL_DEPTH_METRICS]
                + [_csv(row.segmentation.get(k)) for k in ('miou', 'pixel_accuracy')]
                + [_csv(row.timing.get(k)) for k in timing_keys] + ['; '.join(row.notes)])
    return path


def _csv(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ''
    return repr(float(value)) if isinstance(value, float) else str(value)


Block = tuple[str, Any]


def depth_table(per_range: Mapping[str, Mapping[str, float]], keys: Sequence[str],
                pixels: Mapping[str, int], frames: Mapping[str, int]) -> Block:
    header = ['range', 'frames', 'pixels'] + [METRIC_LABELS.get(k, k) for k in keys]
    rows = [[name, fmt(frames.get(name, 0)), fmt(pixels.get(name, 0))]
            + [fmt(values.get(k)) for k in keys] for name, values in per_range.items()]
    return ('table', (header, rows))


def render_markdown(blocks: Sequence[Block]) -> str:
    lines: list[str] = []
    for kind, content in blocks:
        if kind in ('h1', 'h2', 'h3'):
            lines += ['#' * int(kind[1]) + ' ' + content, '']
        elif kind == 'p':
            lines += [content, '']
        elif kind == 'list':
            lines += [f'- {item}' for item in content] + ['']
        elif kind == 'table':
            header, rows = content
            lines.append('| ' + ' | '.join(header) + ' |')
            lines.append('|' + '|'.join('---' for _ in header) + '|')
            lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
            lines.append('')
        elif kind == 'image':
            target, alt = content
            lines += [f'![{alt}]({target})', '']
    return '\n'.join(lines)


def render_html(blocks: Sequence[Block], title: str) -> str:
    parts = [
        '<!DOCTYPE html>', '<html><head><meta charset="utf-8">',
        f'<title>{html.escape(title)}</title>',
        '<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}'
        'table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;'
        'padding:2px 8px;text-align:right}th{background:#eee}td:first-child{text-align:left}'
        'img{max-width:100%}</style>', '</head><body>']
    for kind, content in blocks:
        if kind in ('h1', 'h2', 'h3'):
            parts.append(f'<{kind}>{html.escape(content)}</{kind}>')
        elif kind == 'p':
            parts.append(f'<p>{html.escape(content)}</p>')
        elif kind == 'list':
            parts.append('<ul>' + ''.join(f'<li>{html.escape(i)}</li>' for i in content)
                         + '</ul>')
        elif kind == 'table':
            header, rows = content
            parts.append('<table><tr>' + ''.join(f'<th>{html.escape(h)}</th>' for h in header)
                         + '</tr>' + ''.join(
                             '<tr>' + ''.join(f'<td>{html.escape(str(c))}</td>' for c in row)
                             + '</tr>' for row in rows) + '</table>')
        elif kind == 'image':
            target, alt = content
            parts.append(f'<p><img src="{html.escape(target)}" alt="{html.escape(alt)}"></p>')
    parts.append('</body></html>')
    return '\n'.join(parts) + '\n'


def build_blocks(metrics: Mapping[str, Any], images: Mapping[str, str],
                 panels: Sequence[str]) -> list[Block]:
    """The report's content; ``images`` maps plot names to paths relative to the report."""
    run = metrics['run']
    frames = metrics['frames']
    blocks: list[Block] = [('h1', f"Evaluation of {run['model_name']} on {run['bag_name']}")]
    blocks.append(('list', [
        f"model: {run['model_name']} ({run['model_path']})",
        f"bag: {run['bag']}",
        f"mode: {run['mode']}" + (f", backend {run['backend']}" if run.get('backend') else '')
        + (', ground-contact prior on (what stands on the ground at its depth)'
           if run.get('ground_contact') else ''),
        f"frames: {frames['read']} read, {frames['depth_scored']} scored for depth, "
        f"{frames['labels_scored']} scored for segmentation, {frames['not_scored']} not scored",
    ]))
    blocks += _headline_blocks(metrics)
    blocks += [('h2', 'Protocol'), ('list', metrics['protocol_description'])]
    blocks += _depth_blocks(metrics, images)
    blocks += _segmentation_blocks(metrics, images)
    blocks += _timing_blocks(metrics, images)
    blocks += _skip_blocks(metrics)
    if panels:
        blocks.append(('h2', 'Sample panels'))
        blocks += [('image', (p, Path(p).stem)) for p in panels]
    blocks += [('h2', 'Files'), ('list', [f'{k}: {v}' for k, v in metrics['files'].items()])]
    output_bag = metrics['files'].get('predictions_bag')
    if output_bag:
        blocks.append(('p', f'Open {output_bag} in Foxglove Studio, or play it with '
                            f'`ros2 bag play {output_bag}` and view the topics in RViz.'))
    return blocks


def _headline_blocks(metrics: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = [('h2', 'Summary')]
    depth = metrics.get('depth')
    if depth and depth['frames_scored']:
        keys = depth['headline_metrics']
        averaging = 'mean of per-image metrics' if depth['averaging'] == 'image' else \
            'pixels pooled over all frames'
        blocks.append(('p', f'Depth, {averaging} ({LOWER_IS_BETTER}):'))
        blocks.append(('table', ([METRIC_LABELS.get(k, k) for k in keys],
                                 [[fmt(depth['headline'][k]) for k in keys]])))
    else:
        blocks.append(('p', 'Depth: no frame could be scored (see "Not scored").'))
    segmentation = metrics.get('segmentation')
    if segmentation and segmentation['frames_scored']:
        blocks.append(('p', f"Segmentation: mIoU {fmt(segmentation['miou'])}, pixel accuracy "
                            f"{fmt(segmentation['pixel_accuracy'])} over "
                            f"{segmentation['frames_scored']} frames."))
    check = metrics.get('classes_check')
    if check:
        blocks.append(('p', check))
    return blocks


def _depth_blocks(metrics: Mapping[str, Any], images: Mapping[str, str]) -> list[Block]:
    depth = metrics.get('depth')
    if not depth or not depth['frames_scored']:
        return []
    keys = list(ALL_DEPTH_METRICS)
    blocks: list[Block] = [
        ('h2', 'Depth per range'),
        ('p', 'Ranges by ground-truth depth. Mean of per-image metrics (a frame counts for a '
              'range when it has pixels there):'),
        depth_table(depth['per_image'], keys, depth['pixels'], depth['frames_per_range']),
        ('p', 'All pixels of all frames pooled (each pixel weighs the same):'),
        depth_table(depth['pooled'], keys, depth['pixels'], depth['frames_per_range']),
        ('p', f"{depth['ground_truth_pixels']} ground-truth pixels passed the protocol; "
              f"{depth['missing_prediction_pixels']} of them had no usable prediction."),
    ]
    if depth.get('per_class'):
        blocks += class_blocks(depth['per_class'])
    scale = depth.get('median_scale')
    if scale:
        blocks.append(('p', f"Median scaling ratios: median {fmt(scale['median'])}, "
                            f"std/median {fmt(scale['std_over_median'])}."))
    for name in ('error_vs_distance', 'error_histogram'):
        if name in images:
            blocks.append(('image', (images[name], name.replace('_', ' '))))
    return blocks


def class_blocks(per_class: Mapping[str, Any]) -> list[Block]:
    """The depth error per class table (evaluation.class_errors)."""
    header = ['class', 'pixels', 'AbsRel', 'share of AbsRel', 'd<1.25', 'RMSE (m)',
              'mean ln(pred/gt)', 'mean gt (m)', 'mean pred (m)']
    rows = [[name, fmt(v['pixels']), fmt(v['abs_rel']), f"{v['abs_rel_share']:.1%}",
             fmt(v['d1']), fmt(v['rmse']), f"{v['log_ratio']:+.3f}", f"{v['gt_mean_m']:.1f}",
             f"{v['pred_mean_m']:.1f}"] for name, v in per_class['classes'].items()]
    mislabel = (' (a pixel the model mislabels counts under the class it gave)'
                if MODEL_SOURCE in per_class['source'] else '')
    return [('h2', 'Depth per class'),
            ('p', f"Classes from {per_class['source']}{mislabel}; all pixels of all frames "
                  "pooled. The share of AbsRel is the class's part of all pixels' summed "
                  'AbsRel (what fixing it would take off the pooled AbsRel); the mean log '
                  'ratio says which way a class is wrong: + too far, - too near.'),
            ('table', (header, rows))]


def _segmentation_blocks(metrics: Mapping[str, Any], images: Mapping[str, str]) -> list[Block]:
    segmentation = metrics.get('segmentation')
    if not segmentation or not segmentation['frames_scored']:
        return []
    rows = [[name, fmt(iou)] for name, iou in segmentation['per_class_iou'].items()]
    blocks: list[Block] = [
        ('h2', 'Segmentation'),
        ('p', 'One confusion matrix over all frames; IoU "-" = class in neither ground truth '
              'nor prediction (left out of the mean).'),
        ('table', (['class', 'IoU'], rows))]
    if 'per_class_iou' in images:
        blocks.append(('image', (images['per_class_iou'], 'per-class IoU')))
    return blocks


def _timing_blocks(metrics: Mapping[str, Any], images: Mapping[str, str]) -> list[Block]:
    timing = metrics.get('timing') or {}
    live = metrics.get('live') or {}
    if not timing and not live:
        return []
    rows = [[k, fmt(v)] for k, v in timing.items()]
    rows += [[k.replace('_', ' '), fmt(v)] for k, v in live.items()
             if isinstance(v, (int, float))]
    blocks: list[Block] = [('h2', 'Timing'), ('table', (['quantity', 'value'], rows))]
    if live:
        blocks.append(('p', 'Live replay: latency is from publishing an image to receiving the '
                            "node's first output with its stamp; a dropped image got no output "
                            '(the node keeps only the newest frame).'))
    if 'latency' in images:
        blocks.append(('image', (images['latency'], 'latency over time')))
    return blocks


def _skip_blocks(metrics: Mapping[str, Any]) -> list[Block]:
    frames = metrics['frames']
    items = [f'{count} frames: {reason}' for reason, count in frames['skipped'].items()]
    items += [f'{count} frames: {reason}' for reason, count in frames['unmatched'].items()]
    items += [f'bag: {problem}' for problem in metrics['bag'].get('problems', [])]
    items += [f'{count} frames: labels not scored: {reason}'
              for reason, count in (metrics.get('segmentation') or {}).get('errors', {}).items()]
    if not items:
        return [('h2', 'Not scored'), ('p', 'Every frame was scored.')]
    return [('h2', 'Not scored'), ('list', items)]


def write_reports(out_dir: Path, metrics: Mapping[str, Any], images: Mapping[str, str],
                  panels: Sequence[str]) -> dict[str, Path]:
    blocks = build_blocks(metrics, images, panels)
    md = out_dir / REPORT_MD
    md.write_text(render_markdown(blocks))
    page = out_dir / REPORT_HTML
    page.write_text(render_html(blocks, blocks[0][1]))
    return {'report_md': md, 'report_html': page}
