"""The LightningModule: any registered network + its loss, trained and validated one way.

Targets: ``depth_log`` and ``intervals`` are derived on the device from the
batch's metric ``depth`` with the recipe's ``depth_coding`` (one place for
the coding: the recipe, then the model card). Validation runs full images
(padded to the network's input multiple, never random crops) and scores them
with :mod:`mtdepth_ros.evaluation.metrics`, reduced across DDP ranks.

Generic recipe features: ``freeze`` (network parameter name prefixes that get
no gradient; their BatchNorm statistics stay fixed: :mod:`training.freezing`),
``stage`` (a named stage of the model's spec, whose ``freeze`` and loss options
are added), and ``init_from`` (start from another run's weights, e.g. stage
one's: a checkpoint, or an exported model, ``*.onnx``: :mod:`training.init_from`).

An export has its BatchNorm folded into the convolutions (no statistics left),
so a run started from one keeps every BatchNorm in eval mode for the whole run
(frozen statistics, "FrozenBN" fine-tuning; their weight and bias still train),
through the same mechanism as frozen prefixes; its checkpoints say so
(``BATCHNORM_FOLDED``), and a later stage started from them does the same.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.evaluation.metrics import (
    DepthAccumulator,
    SegmentationAccumulator,
    outlier_frames,
)
from mtdepth_ros.evaluation.protocols import get_protocol, prepare_depth
from training.checkpoints import EXTRA_KEY
from training.data.base import DEPTH_NATIVE, NATIVE_REGION
from training.depth_decoding import coding_from_config, depth_metres
from training.freezing import freeze_parameters, hold_batchnorm
from training.init_from import BATCHNORM_FOLDED, load_start_weights
from training.lineage import INIT_FROM_DATA
from training.losses import TOTAL
from training.losses.targets import (
    depth_to_intervals,
    encode_depth,
    valid_depth,
)
from training.nets import build_loss, build_model, get_spec
from training.nets.registry import resolve_stage

LOG = logging.getLogger(__name__)

VAL_DEPTH_RANGE = (1e-3, 80.0)  # metres scored in validation (KITTI's 80 m cap)
VAL_METRICS = ('silog', 'abs_rel', 'rmse', 'd1')
# Batch flags passed to networks whose forward() takes them (semantic_booster:
# per-sample gradient stops between its branches for mixed supervision).
SUPERVISION_FLAGS = ('has_depth', 'has_labels')


class MultiTaskModule(L.LightningModule):
    """Train a registered multi-task network (``net``) with its registered loss.

    Args:
        net: registry name (``training.nets.list_models()``).
        net_args: keyword arguments of the network builder.
        loss: options of the model's loss factory (``weighting``, ``weights``, ...).
        depth_coding: ``DepthCoding`` fields for the depth targets and decoding.
        lr, betas, weight_decay: Adam.
        poly_power: learning rate ``lr * (1 - step / max_steps) ** poly_power``.
        freeze: network parameter name prefixes not trained.
        stage: a training stage of the model (its ``freeze`` / loss options).
        init_from: checkpoint, or exported ``.onnx`` model, whose network weights are
            loaded first (an export: every BatchNorm then stays in eval mode).
        val_depth_range: metres of ground truth scored in validation without a
            ``val_protocol`` (no crop, predictions as they are).
        val_protocol: the evaluation protocol validation applies
            (:data:`mtdepth_ros.evaluation.protocols.PROTOCOLS`: ``kitti_eigen``,
            ``nyu_eigen``, ...): its crop, depth cap and treatment of predictions,
            through the same code as ``mtdepth-eval`` and ``python -m training test``.
    """

    def __init__(self, net: str = 'default', net_args: dict[str, Any] | None = None,
                 loss: dict[str, Any] | None = None,
                 depth_coding: dict[str, Any] | None = None,
                 lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999),
                 weight_decay: float = 1e-4, poly_power: float = 0.9,
                 freeze: list[str] | None = None, stage: str | None = None,
                 init_from: str | None = None,
                 val_depth_range: tuple[float, float] = VAL_DEPTH_RANGE,
                 val_protocol: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec = get_spec(net)
        self.net = build_model(net, **(net_args or {}))
        self.loss = build_loss(net, stage=stage, **(loss or {}))
        self.coding = coding_from_config(depth_coding)
        self.freeze_prefixes = tuple(freeze or ())
        if stage is not None:
            self.freeze_prefixes += resolve_stage(self.spec, stage).freeze
        freeze_parameters(self.net, self.freeze_prefixes, self.spec.name)
        self.batchnorm_folded = False  # every BatchNorm in eval for the run (init_from an export)
        self._init_from_data = ''  # the lineage of the init_from weights (training.lineage)
        if init_from:
            start = load_start_weights(init_from, self.net, self.spec.name)
            self._init_from_data = start.lineage
            if start.batchnorm_folded:
                self._keep_batchnorm_statistics(init_from)
        self.run_config: dict[str, Any] = {}  # the resolved CLI config (set by training.cli)
        low, high = val_depth_range
        self.val_protocol = get_protocol(val_protocol) if val_protocol else \
            get_protocol('raw').with_options(name='validation', min_depth=low, max_depth=high)
        self._depth_acc = DepthAccumulator()
        self._frame_abs_rel: list[float] = []  # each validation frame's AbsRel, as scored
        self._seg_acc: SegmentationAccumulator | None = None
        self._interval_hits = np.zeros(2, dtype=np.float64)  # (correct, counted)

    # -- setup -------------------------------------------------------------------------------

    def _freeze_batchnorm(self) -> int:
        return hold_batchnorm(self.net, self.freeze_prefixes, every=self.batchnorm_folded)

    def train(self, mode: bool = True) -> MultiTaskModule:
        super().train(mode)
        if mode:
            self._freeze_batchnorm()
        return self

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Lightning restores each submodule's own mode around validation rather
        # than calling train(), so frozen BatchNorm is put back in eval here.
        if self.freeze_prefixes or self.batchnorm_folded:
            self._freeze_batchnorm()

    def _keep_batchnorm_statistics(self, path: str) -> None:
        """Keep every BatchNorm in eval mode from now on (see the module docstring)."""
        self.batchnorm_folded = True
        count = self._freeze_batchnorm()
        # A warning so that it shows (nothing configures logging): it changes how the run trains.
        LOG.warning('init_from %s: BatchNorm folded into the weights, so all %d BatchNorm '
                    'layers stay in eval mode for the whole run (frozen statistics; their '
                    'weight and bias train)', path, count)

    # -- training ----------------------------------------------------------------------------

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        return self.net(image)

    def with_targets(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch plus depth targets derived from ``depth`` with the recipe's coding."""
        if 'depth' not in batch:
            return batch
        depth = batch['depth']  # (N, 1, H, W) metres, 0 = invalid, +inf = beyond the coding
        far = torch.isposinf(depth)  # supervised at the coding's far end (Augment.far_classes)
        depth = torch.where(far, torch.full_like(depth, self.coding.d_max), depth)
        valid = valid_depth(depth)
        if 'depth_valid' in batch:
            valid &= batch['depth_valid'].bool()
        depth = torch.where(valid, depth, torch.zeros_like(depth))
        return {**batch, 'depth': depth, 'depth_valid': valid,
                'depth_log': encode_depth(depth, self.coding),
                'intervals': depth_to_intervals(depth, self.coding)}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        batch = self.with_targets(batch)
        outputs = self.net(batch['image'], **supervision_flags(self.net, batch))
        losses = self.loss(outputs, batch)
        size = batch['image'].shape[0]
        for key, value in losses.items():
            self.log(f'train/{key}', value.detach(), prog_bar=key == TOTAL, batch_size=size)
        for head, weight in self.loss.task_weights().items():
            self.log(f'weight/{head}', weight, batch_size=size)
        total = losses[TOTAL]
        if not total.requires_grad:  # no head supervised in this batch
            return self.zero_loss()
        return total

    def zero_loss(self) -> Tensor:
        """A loss of exactly 0 tied to every trainable parameter (each gets a zero gradient).

        Returned for a batch that supervises nothing: Lightning does not support
        ``None`` from ``training_step`` under DDP (a rank that skips the backward
        pass leaves the others waiting in the gradient all-reduce), so every rank
        runs its backward pass and the optimiser steps on all of them alike.
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in trainable]).sum() * 0.0

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Adam's groups: the network with ``weight_decay``; the loss's own parameters and
        the network's zero-started branch (its ``starts_neutral`` prefixes) without.

        The loss's parameters are the learned task weights (uncertainty
        log-variances): weight decay would pull them to 0, i.e. towards a
        fixed weighting, which is not the method. A branch that starts with a
        zero output layer gets no loss gradient in its other layers until that
        layer has grown, and Adam turns the decay's gradient alone into full
        steps of the learning rate towards 0: a first run of the segmentation
        cue ended with the branch's weights 7-20x below their start and its
        output near 0 (docs/training.md, "The segmentation cue").
        """
        loss_ids = {id(p) for p in self.loss.parameters()}
        neutral = tuple(getattr(self.net, 'starts_neutral', ()))
        fresh_ids = {id(p) for name, p in self.net.named_parameters() if name.startswith(neutral)}
        trainable = [p for p in self.parameters() if p.requires_grad]
        no_decay = loss_ids | fresh_ids
        groups = [{'params': [p for p in trainable if id(p) not in no_decay],
                   'weight_decay': self.hparams['weight_decay']},
                  {'params': [p for p in trainable if id(p) in loss_ids], 'weight_decay': 0.0},
                  {'params': [p for p in trainable if id(p) in fresh_ids], 'weight_decay': 0.0}]
        return [group for group in groups if group['params']]

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameter_groups(), lr=self.hparams['lr'],
                                     betas=tuple(self.hparams['betas']))
        total_steps = max(int(self.trainer.estimated_stepping_batches), 1)
        power = self.hparams['poly_power']

        def poly(step: int) -> float:
            return max(1.0 - step / total_steps, 0.0) ** power

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly)
        return {'optimizer': optimizer,
                'lr_scheduler': {'scheduler': scheduler, 'interval': 'step'}}

    # -- validation --------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._depth_acc = DepthAccumulator()
        self._frame_abs_rel = []  # this process's frames, in the order scored
        classes = dict(getattr(self.net, 'head_channels', {})).get('segmentation')
        self._seg_acc = SegmentationAccumulator(int(classes)) if classes else None
        self._interval_hits = np.zeros(2, dtype=np.float64)

    def predict_full(self, image: Tensor) -> dict[str, Tensor]:
        """Network outputs for whole images of any size (padded to the input multiple)."""
        height, width = image.shape[-2:]
        multiple = self.spec.input_multiple
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        padded = F.pad(image, (0, pad_w, 0, pad_h), mode='replicate') if pad_h or pad_w else image
        outputs = self.net(padded)
        return {head: value[..., :height, :width] if value.dim() == 4 else value
                for head, value in outputs.items()}

    def depth_metres(self, depth: Tensor) -> Tensor:
        """The depth head's output in metres, whatever the model's depth encoding."""
        return depth_metres(self.net, self.spec, self.coding, depth)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        batch = self.with_targets(batch)
        outputs = self.predict_full(batch['image'])
        size = batch['image'].shape[0]
        losses = self.loss(outputs, batch)
        for key, value in losses.items():
            self.log(f'val/loss_{key}', value, batch_size=size, sync_dist=True)
        has_depth = _flags(batch, 'has_depth', size)
        has_labels = _flags(batch, 'has_labels', size)
        if 'depth' in outputs and 'depth' in batch:
            self._score_depth(self.depth_metres(outputs['depth']), batch['depth'], has_depth,
                              batch.get(DEPTH_NATIVE), batch.get(NATIVE_REGION))
        if 'intervals' in outputs and 'intervals' in batch:
            self._score_intervals(outputs['intervals'], batch['intervals'], has_depth)
        if self._seg_acc is not None and 'segmentation' in outputs and 'labels' in batch:
            predicted = outputs['segmentation'].argmax(1).cpu().numpy()
            labels = batch['labels'].cpu().numpy()
            for index in np.flatnonzero(has_labels):
                self._seg_acc.update(predicted[index], labels[index])

    def _score_depth(self, predicted: Tensor, depth: Tensor, has_depth: np.ndarray,
                     native: list[np.ndarray | None] | None = None,
                     regions: list[tuple[int, int, int, int] | None] | None = None) -> None:
        """The protocol per frame: on the ground truth as read where the batch carries it
        (``Augment.native_depth``; the prediction covers its region and is aligned there as
        the benchmark aligns it), else on the batch's own, resized ground truth."""
        predicted_np = predicted[:, 0].float().cpu().numpy()  # (N, H, W) metres
        depth_np = depth[:, 0].float().cpu().numpy()
        for index in np.flatnonzero(has_depth):
            truth, region = depth_np[index], None
            if native is not None and regions is not None and native[index] is not None:
                truth, box = native[index], regions[index]
                assert box is not None
                region = Region(*box)
                if region == Region.whole(truth.shape):
                    region = None
            prepared = prepare_depth(predicted_np[index], truth, self.val_protocol, region)
            frame = self._depth_acc.update(prepared.pred, prepared.gt, prepared.mask)
            self._frame_abs_rel.append(frame['all']['abs_rel'])

    def _score_intervals(self, logits: Tensor, labels: Tensor, has_depth: np.ndarray) -> None:
        keep = torch.as_tensor(has_depth, device=labels.device)
        counted = (labels != IGNORE_INDEX) & keep[:, None, None]
        correct = (logits.argmax(1) == labels) & counted
        self._interval_hits += [float(correct.sum()), float(counted.sum())]

    def on_validation_epoch_end(self) -> None:
        outliers = outlier_frames(self._frame_abs_rel)
        if outliers:
            values = ', '.join(f'{i} ({self._frame_abs_rel[i]:.2f})' for i in outliers)
            LOG.warning('validation frames far off the rest (index in this process\'s '
                        'validation order, AbsRel): %s; the median frame scores %.3f, so the '
                        'mean AbsRel is largely theirs: check those frames', values,
                        float(np.nanmedian(self._frame_abs_rel)))
        self._reduce_accumulators()
        metrics: dict[str, float] = {}
        if self._depth_acc.frames:
            depth = self._depth_acc.result('image')['all']
            metrics.update({key: depth[key] for key in VAL_METRICS})
        if self._interval_hits[1] > 0:
            metrics['interval_accuracy'] = self._interval_hits[0] / self._interval_hits[1]
        if self._seg_acc is not None and self._seg_acc.frames:
            result = self._seg_acc.result()
            metrics['miou'] = result['miou']
            metrics['pixel_accuracy'] = result['pixel_accuracy']
        for key, value in metrics.items():
            if not math.isnan(value):
                # Already reduced across ranks: every rank holds the same value, and
                # sync_dist's mean over them leaves it unchanged.
                self.log(f'val/{key}', float(value), prog_bar=key in ('silog', 'miou'),
                         sync_dist=True)

    def _reduce_accumulators(self) -> None:
        """Sum the per-rank accumulators over DDP ranks (a no-op on one process)."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return
        acc = self._depth_acc
        arrays: list[np.ndarray] = [acc.sums, acc.image_totals,
                                    acc.image_counts.astype(np.float64), self._interval_hits,
                                    np.array([acc.frames], dtype=np.float64)]
        if self._seg_acc is not None:
            arrays.append(self._seg_acc.confusion.astype(np.float64))
            arrays.append(np.array([self._seg_acc.frames], dtype=np.float64))
        reduced = [self.trainer.strategy.reduce(
            torch.as_tensor(a, dtype=torch.float64, device=self.device), reduce_op='sum')
            .cpu().numpy() for a in arrays]
        acc.sums, acc.image_totals = reduced[0], reduced[1]
        acc.image_counts = reduced[2].astype(np.int64)
        self._interval_hits = reduced[3]
        acc.frames = int(reduced[4][0])
        if self._seg_acc is not None:
            self._seg_acc.confusion = reduced[5].astype(np.int64)
            self._seg_acc.frames = int(reduced[6][0])

    def validation_metrics(self) -> dict[str, float]:
        """The last validation's ``val/*`` values logged by this module."""
        if self._trainer is None:
            return {}
        return {key[len('val/'):]: float(value)
                for key, value in self.trainer.callback_metrics.items()
                if key.startswith('val/') and not key.startswith('val/loss')}

    # -- checkpoint --------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what export needs: the resolved config, data facts, the last validation."""
        data = getattr(self.trainer, 'datamodule', None) if self._trainer else None
        facts = data.card_facts() if data is not None and hasattr(data, 'card_facts') else {}
        checkpoint[EXTRA_KEY] = {'config': self.run_config, 'data': facts,
                                 'metrics': self.validation_metrics()}
        if self._init_from_data:
            checkpoint[EXTRA_KEY][INIT_FROM_DATA] = self._init_from_data
        if self.batchnorm_folded:
            checkpoint[EXTRA_KEY][BATCHNORM_FOLDED] = True


def _flags(batch: Mapping[str, Any], key: str, size: int) -> np.ndarray:
    """(N,) bool of a batch flag; all true when the batch does not carry it."""
    if key not in batch:
        return np.ones(size, dtype=bool)
    return np.asarray(torch.as_tensor(batch[key]).reshape(-1).cpu().numpy(), dtype=bool)


def supervision_flags(net: nn.Module, batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """The batch's :data:`SUPERVISION_FLAGS` that ``net.forward`` accepts as keywords."""
    accepted = inspect.signature(net.forward).parameters
    return {flag: batch[flag] for flag in SUPERVISION_FLAGS if flag in accepted and flag in batch}
