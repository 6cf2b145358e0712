"""The deployable default: a light encoder, a shared light decoder, three small heads.

MobileNetV3-Small (torchvision) -> FPN-style decoder at stride 4 -> one
3x3+1x1 head each for normalised log depth, depth intervals and semantic
segmentation, upsampled bilinearly to the input. About 1.1 M parameters
(a ~4.5 MB ONNX file), trained with sparse losses and learned uncertainty
weighting (the MultiDepth recipe, plus segmentation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI
from training.losses import CompositeLoss, SparseCrossEntropy, SparseMSE
from training.nets.encoders import build_encoder
from training.nets.heads import ConvHead, LightDecoder, upsample_to
from training.nets.registry import MultiTaskNet, register_model

NUM_CLASSES = 19  # Cityscapes train ids
DECODER_WIDTH = 64
HEAD_WIDTH = 32
DECODER_FIRST_STAGE = 1  # stride 4: finest stage the decoder uses


def default_loss(weighting: str = 'uncertainty', weights: Mapping[str, float] | None = None,
                 uncertainty_init: float = 1.0) -> CompositeLoss:
    """Sparse MSE (depth) + sparse cross-entropy (intervals, segmentation), learned weights."""
    return CompositeLoss(
        {'depth': SparseMSE('depth'), 'intervals': SparseCrossEntropy('intervals'),
         'segmentation': SparseCrossEntropy('segmentation', target='labels')},
        weighting=weighting, weights=weights, uncertainty_init=uncertainty_init)


@register_model(
    'default', heads=('depth', 'intervals', 'segmentation'), loss=default_loss,
    tiny={'decoder_width': 16, 'head_width': 8, 'encoder_args': {'width_mult': 0.25}},
    description='deployable default: MobileNetV3-Small, light decoder, depth/intervals/segmentation')
class DefaultNet(MultiTaskNet):
    def __init__(self, num_intervals: int = MULTIDEPTH_KITTI.num_intervals,
                 num_classes: int = NUM_CLASSES, encoder: str = 'mobilenet_v3_small',
                 pretrained: bool = False, encoder_args: Mapping[str, Any] | None = None,
                 decoder_width: int = DECODER_WIDTH, head_width: int = HEAD_WIDTH) -> None:
        super().__init__({'depth': 1, 'intervals': num_intervals, 'segmentation': num_classes})
        self.encoder = build_encoder(encoder, pretrained, **dict(encoder_args or {}))
        self.decoder = LightDecoder(self.encoder.channels, decoder_width, DECODER_FIRST_STAGE)
        self.task_heads = nn.ModuleDict({
            task: ConvHead(decoder_width, out, head_width)
            for task, out in self.head_channels.items()})

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        shared = self.decoder(self.encoder(image))  # (N, decoder_width, H/4, W/4)
        size = image.shape[-2:]
        return {task: upsample_to(head(shared), size) for task, head in self.task_heads.items()}
