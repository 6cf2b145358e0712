"""MultiDepth (Liebel & Koerner, ITSC 2019): depth regression + interval classification.

PSPNet as the authors' code builds it: a deep stem (three 3x3 conv-BN-ReLU,
64/64/128, the first with stride 2, then max-pool), ResNet-101 blocks
[3, 4, 23, 3] with dilation 2 and 4 in the last two stages (output stride 8),
and one PSP head per task (bins 6/3/2/1, 2048 -> 512 each, 3x3 conv 512 + BN
+ ReLU, dropout 0.1, 1x1 conv to 1 channel of normalised log depth or to 32
interval logits), upsampled bilinearly to the input.

``encoder='mobilenet_v3_small'`` (or any :func:`build_encoder` name) keeps
the heads and swaps the backbone: the CPU-sized variant of
``training/reproduce.py``'s multidepth study. ``tasks=('depth',)`` builds the
regression-only baseline of the paper's Table 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI
from training.losses import CompositeLoss, LossTerm, SparseCrossEntropy, SparseMSE
from training.nets.encoders import DEEP_STEM_WIDTHS, build_encoder
from training.nets.heads import PSP_BINS, PSP_DROPOUT, PSP_WIDTH, PSPHead, upsample_to
from training.nets.registry import MultiTaskNet, register_model

TASKS = ('depth', 'intervals')
RESNET_ARGS = {'output_stride': 8, 'deep_stem_widths': DEEP_STEM_WIDTHS}


def multidepth_loss(weighting: str = 'uncertainty', weights: Mapping[str, float] | None = None,
                    uncertainty_init: float = 1.0,
                    heads: Sequence[str] = TASKS) -> CompositeLoss:
    """Sparse MSE on normalised log depth + sparse cross-entropy on intervals.

    Default weighting: Kendall's uncertainty weighting in the released code's
    form, ``s`` initialised to 1 (see :mod:`training.losses.uncertainty`).
    """
    terms: dict[str, LossTerm] = {'depth': SparseMSE('depth'),
                                  'intervals': SparseCrossEntropy('intervals')}
    unknown = sorted(set(heads) - set(terms))
    if unknown:
        raise ValueError(f'MultiDepth loss has no heads {unknown}; it has {list(terms)}')
    return CompositeLoss({head: terms[head] for head in heads}, weighting=weighting,
                         weights=weights, uncertainty_init=uncertainty_init)


@register_model(
    'multidepth', heads=TASKS, loss=multidepth_loss, input_multiple=8,
    tiny={'layers': (1, 1, 1, 1), 'head_width': 16},
    description='MultiDepth (Liebel & Koerner 2019): PSPNet ResNet-101, regression + intervals')
class MultiDepth(MultiTaskNet):
    def __init__(self, num_intervals: int = MULTIDEPTH_KITTI.num_intervals,
                 encoder: str = 'resnet101', pretrained: bool = False,
                 encoder_args: Mapping[str, Any] | None = None,
                 layers: Sequence[int] | None = None, bins: Sequence[int] = PSP_BINS,
                 head_width: int = PSP_WIDTH, dropout: float = PSP_DROPOUT,
                 tasks: Sequence[str] = TASKS) -> None:
        channels = {'depth': 1, 'intervals': num_intervals}
        unknown = sorted(set(tasks) - set(channels))
        if unknown or not tasks:
            raise ValueError(f'MultiDepth tasks must be a non-empty subset of {TASKS}, got {tasks}')
        super().__init__({task: channels[task] for task in tasks})
        args = dict(RESNET_ARGS if encoder.startswith('resnet') else {})
        args.update(encoder_args or {})
        if layers is not None:
            args['layers'] = tuple(layers)
        self.encoder = build_encoder(encoder, pretrained, **args)
        features = self.encoder.channels[-1]
        self.task_heads = nn.ModuleDict({
            task: PSPHead(features, out, bins=bins, width=head_width, dropout=dropout)
            for task, out in self.head_channels.items()})

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        features = self.encoder(image)[-1]  # (N, 2048, H/8, W/8)
        size = image.shape[-2:]
        return {task: upsample_to(head(features), size)  # (N, 1 | 32, H, W)
                for task, head in self.task_heads.items()}
