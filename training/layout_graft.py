"""A layout probe grafted into the exported model whose segmentation it reads.

``python -m training layout-probe graft PROBE.pt --out MODEL.onnx [--model M.onnx]
[--mix 0.5] [--name NAME]``

The default network's layout branch (:class:`~training.nets.layout.LayoutBranch`) is the
probe inside the network: the segmentation's class ids at a quarter of the input, the
probe's U-Net, and a mix with the depth head in ln metres. The graft builds the exported
model's network with that branch, loads the export's weights into it
(:mod:`training.onnx_weights`; the branch starts neutral, so the export lacking it loads),
puts the probe's weights in the branch and its share at ``mix`` (0.5: the geometric mean
``layout-probe score`` reports), and exports the result as ``python -m training export``
does: the same four outputs, and ONNX Runtime checked against torch on a fixed image.

The probe must have learnt from this model's segmentation (a probe of another model's
segmentation reads other mistakes): its record (``prepare`` -> ``train``) names the
model's sha256, and a probe of another model, or without a record, is refused.

A refiner (``prepare --with-depth``: the probe's U-Net reading the model's depth too)
becomes the refine branch instead (:class:`~training.nets.layout.RefineBranch`, after any
layout branch), its correction applied at ``mix`` (1: the refined depth, 0.5: its
geometric mean with the model's, as ``layout-probe score`` reports them).

The card is the model's, with the network's arguments gaining the branch, the recipe
and training data naming the probe and what it learnt from, and the metrics cleared
but for facts of the training data: figures of the grafted model come from scoring it
(``real-check --record``), as for a weight average.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mtdepth_ros.inference.backends.engine_cache import file_sha256
from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.depth_coding import DepthCoding
from mtdepth_ros.inference.model_file import read_card
from training.average_weights import KEPT_METRICS
from training.export import DeployNet, check_report, compare_outputs, export_onnx, write_card
from training.layout_probe import saved_shape
from training.layout_share import read_class_share
from training.nets import build_model, get_spec
from training.nets.default import DefaultNet
from training.nets.layout import check_confidence
from training.onnx_weights import load_onnx_weights

NET = 'default'  # the network that has the branch
MIX_METRIC = 'layout_mix'  # the branch's share, in the card's metrics
REFINE_MIX_METRIC = 'refine_mix'  # the refine branch's share


class GraftError(ValueError):
    """The probe and the model do not go together."""


def probe_source(saved: dict[str, Any], probe: Path, model: Path) -> dict[str, Any]:
    """The probe's record of what it learnt from, checked against ``model``."""
    source = saved.get('source') or {}
    recorded = source.get('model_sha256')
    if not recorded:
        raise GraftError(f'{probe} records no model whose segmentation it learnt from '
                         '(trained before the record was kept): prepare and train it again')
    if recorded != file_sha256(model):
        raise GraftError(f'{probe} learnt from the segmentation of {source.get("model")} '
                         f'(sha256 {recorded[:12]}), not of {model} '
                         f'(sha256 {file_sha256(model)[:12]})')
    return source


def grafted_card(card: ModelCard, widths: tuple[int, ...], mix: float,
                 source: dict[str, Any], name: str | None,
                 confidence: tuple[float, ...] = (),
                 class_share: dict[str, Any] | None = None) -> ModelCard:
    """``card`` for the model with the branch (module docstring)."""
    config = copy.deepcopy(card.config)
    model = config.setdefault('model', {})
    coding = card.depth_coding
    assert coding is not None  # checked by graft
    model['net_args'] = {**(model.get('net_args') or {}), 'layout_widths': list(widths),
                         'layout_depth_range': [coding.d_min, coding.d_max],
                         **({'layout_confidence': list(confidence)} if confidence else {}),
                         **({'layout_class_share': class_share['shares']}
                            if class_share else {})}
    config['layout_probe'] = {**source, 'mix': mix,
                              **({'confidence': list(confidence)} if confidence else {}),
                              **({'class_share': class_share} if class_share else {})}
    gate = f' gated by segmentation confidence {confidence[0]:g}-{confidence[1]:g}' \
        if confidence else ''
    if class_share:
        gate += f" times a share by class fitted on {class_share['tree']}"
    probe = (f"layout probe (mix {mix:g}{gate}; {source.get('steps')} steps, seed "
             f"{source.get('seed')}, on {source.get('tree')})")
    metrics = {k: card.metrics[k] for k in KEPT_METRICS if k in card.metrics}
    return replace(card, name=name or card.name, recipe=f'{card.recipe} + {probe}',
                   training_data=(f"{card.training_data}; then the layout probe: kitti at "
                                  f"{source.get('tree')} ({source.get('frames')} training "
                                  "frames, the model's segmentation of them)"),
                   metrics={**metrics, MIX_METRIC: mix}, config=config)


def graft(probe: Path, model: Path, out: Path, mix: float = 0.5,
          name: str | None = None, confidence: Sequence[float] = (),
          class_share: Path | None = None) -> tuple[ModelCard, dict[str, float]]:
    """Write ``model`` with ``probe`` as its layout branch to ``out``, its share gated by the
    segmentation's ``confidence`` (low, high) and scaled by ``class_share``'s table
    (:mod:`training.layout_share`) if given; its card and the ONNX Runtime vs torch
    comparison (:func:`training.export.compare_outputs`)."""
    if not 0 < mix <= 1:
        raise GraftError(f'--mix {mix}: the branch\'s share must be in (0, 1]')
    try:
        gate: tuple[float, ...] = check_confidence(confidence) if confidence else ()
    except ValueError:
        raise GraftError(f'--confidence {" ".join(map(str, confidence))}: give LOW HIGH '
                         'with 0 <= LOW < HIGH <= 1') from None
    saved = torch.load(probe, weights_only=True)
    if saved.get('depth_input'):
        if gate or class_share is not None:
            raise GraftError(f'{probe} is a refiner: --confidence and --class-share are the '
                             'layout branch\'s')
        return graft_refiner(saved, probe, model, out, mix, name)
    card = read_card(model)
    recorded = default_export(card, model)
    if (recorded.get('net_args') or {}).get('layout_widths'):
        raise GraftError(f'{model} has a layout branch already: graft into the model it was '
                         'grafted into (its card names it)')
    source = probe_source(saved, probe, model)
    classes, widths = saved_shape(saved)
    try:
        table = read_class_share(class_share, probe, model, classes) if class_share else None
    except ValueError as error:
        raise GraftError(str(error)) from None
    coding = card.depth_coding
    assert coding is not None  # checked by default_export
    net_args = {**(recorded.get('net_args') or {}), 'layout_widths': widths,
                'layout_depth_range': (coding.d_min, coding.d_max), 'layout_confidence': gate,
                'layout_class_share': table['shares'] if table else ()}
    net = branched_net(net_args, classes, probe, model)
    assert net.layout is not None
    net.layout.layout.load_state_dict(saved['state'])
    with torch.no_grad():
        net.layout.mix.fill_(mix)
    return export_grafted(net, card, grafted_card(card, widths, mix, source, name, gate, table),
                          out)


def default_export(card: ModelCard, model: Path) -> dict[str, Any]:
    """The card's recorded model section; GraftError unless it is the default network's
    export with a depth coding (only it has the branches)."""
    recorded: dict[str, Any] = card.config.get('model') or {}
    if recorded.get('net') != NET or card.depth_coding is None:
        raise GraftError(f'{model} is no export of the {NET!r} network with a depth coding '
                         f'(it is {recorded.get("net")!r}): only it has the layout and refine branches')
    return recorded


def branched_net(net_args: dict[str, Any], classes: int, probe: Path, model: Path) -> DefaultNet:
    """The default network of ``net_args`` (a new branch among them, neutral) with
    ``model``'s weights; GraftError unless its segmentation has the ``classes`` that
    ``probe`` reads."""
    net = build_model(NET, **net_args)
    assert isinstance(net, DefaultNet)
    if net.head_channels['segmentation'] != classes:
        raise GraftError(f'{probe} reads {classes} classes, {model} gives '
                         f"{net.head_channels['segmentation']}")
    load_onnx_weights(model, net, NET)
    return net


def export_grafted(net: DefaultNet, card: ModelCard, new_card: ModelCard,
                   out: Path) -> tuple[ModelCard, dict[str, float]]:
    """Export ``net`` (with ``card``'s depth coding and input) as ``python -m training
    export`` does, with ``new_card``; the ONNX Runtime vs torch comparison, which must
    pass."""
    assert card.depth_coding is not None  # checked by default_export
    depth = card.heads['depth'].encoding or 'normalized_log'
    deploy = DeployNet(net.eval(), get_spec(NET), card.depth_coding, depth).eval()
    size = (card.input.height, card.input.width)
    export_onnx(deploy, size, out)
    write_card(out, new_card)
    read_card(out)  # the vehicle's reader must accept it
    report = compare_outputs(deploy, out, size)
    problems = check_report(report)
    if problems:
        raise RuntimeError(f'{out}: ONNX outputs differ from torch: ' + '; '.join(problems))
    return new_card, report


def graft_refiner(saved: dict[str, Any], refiner: Path, model: Path, out: Path, mix: float,
                  name: str | None) -> tuple[ModelCard, dict[str, float]]:
    """Write ``model`` with the refiner ``saved`` (from ``refiner``) as its refine branch
    (:class:`~training.nets.layout.RefineBranch`, after any layout branch) at ``mix`` (1:
    the refined depth, 0.5: its geometric mean with the model's) to ``out``."""
    card = read_card(model)
    recorded = default_export(card, model)
    net_args = dict(recorded.get('net_args') or {})
    if net_args.get('refine_widths'):
        raise GraftError(f'{model} has a refine branch already: graft into the model it was '
                         'grafted into (its card names it)')
    source = probe_source(saved, refiner, model)
    classes, widths = saved_shape(saved)
    coding = card.depth_coding
    assert coding is not None  # checked by default_export
    net_args.update(refine_widths=list(widths), refine_far_classes=list(card.far_class_ids),
                    refine_mix=mix, layout_depth_range=[coding.d_min, coding.d_max])
    if saved.get('confidence_input'):  # the refiner reads the confidence the model reports
        if coding != DepthCoding(coding.d_min, coding.d_max, coding.num_intervals):
            raise GraftError(f'{model}: its depth coding clips the intervals ({coding}); '
                             'a refine branch reads the confidence of an unclipped coding')
        net_args.update(refine_confidence=True, num_intervals=coding.num_intervals)
    net = branched_net(net_args, classes, refiner, model)
    assert net.refine is not None
    net.refine.refiner.load_state_dict(saved['state'])
    config = copy.deepcopy(card.config)
    config.setdefault('model', {})['net_args'] = net_args
    config['refiner'] = {**source, 'mix': mix}
    described = (f"refiner (mix {mix:g}; {source.get('steps')} steps, seed "
                 f"{source.get('seed')}, row fallback {source.get('row_fallback', 0):g}"
                 + (f", read far {source['read_far']:g}" if 'read_far' in source else '')
                 + (', reading the confidence' if saved.get('confidence_input') else '')
                 + f", on {source.get('tree')})")
    metrics = {k: card.metrics[k] for k in KEPT_METRICS if k in card.metrics}
    if MIX_METRIC in card.metrics:
        metrics[MIX_METRIC] = card.metrics[MIX_METRIC]
    new_card = replace(card, name=name or card.name, recipe=f'{card.recipe} + {described}',
                       training_data=(f"{card.training_data}; then the refiner: kitti at "
                                      f"{source.get('tree')} ({source.get('frames')} training "
                                      "frames, the model's depth and segmentation of them)"),
                       metrics={**metrics, REFINE_MIX_METRIC: mix}, config=config)
    return export_grafted(net, card, new_card, out)
