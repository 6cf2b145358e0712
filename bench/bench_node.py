"""The node's per-frame overhead (everything but the network) as a share of inference.

``python -m bench node``. One 1216x352 bgr8 frame goes through exactly the
code the node runs per frame (``mtdepth_ros.node.MtDepthNode._process``):
image conversion, preprocessing, the network, head decoding, colouring, the
point cloud, message filling and serialisation (what ``publish`` does before
handing bytes to DDS). Every output is on and subscribed, the worst case.

The network is ``models/mtdepth_default.onnx`` when it exists at 1216x352;
otherwise one of the same shape built here with ``onnx.helper`` and random
weights (:func:`representative_model`). The output says which ran.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.images import array_to_image, image_to_rgb
from mtdepth_ros.inference.backends.base import BackendOptions
from mtdepth_ros.inference.card import CameraSpec, ClassSpec, HeadSpec, InputSpec, ModelCard
from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI
from mtdepth_ros.inference.model_file import embed_card
from mtdepth_ros.inference.outputs import CloudSettings, OutputBuilder, available_outputs
from mtdepth_ros.inference.predictor import Predictor

WIDTH, HEIGHT = 1216, 352
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / 'models' / 'mtdepth_default.onnx'
KITTI_FX = 707.0  # KITTI's ~721 px focal length after the crop/resize to 1216 wide
REPEATS = 10
NETWORK_REPEATS = 5
SEED = 0
OPSET = 17
STEM_CHANNELS = 16  # 1/2 resolution
ENCODER_CHANNELS = (24, 40, 96, 128)  # depthwise-separable stride-2 stages: 1/4 .. 1/32
DECODER_WIDTH = 64  # as training/nets/default.py
HEAD_WIDTH = 32
OUTPUT_STRIDE = 4  # heads run at 1/4 and are upsampled to the input
NUM_CLASSES = 19  # Cityscapes train ids
# (stage, output groups built in that stage); names are outputs of mtdepth_ros.inference.outputs
BUILD_STAGES = (
    ('depth image + camera_info', ('depth', 'depth_camera_info')),
    ('intervals + colour', ('intervals', 'intervals_color')),
    ('segmentation + colour', ('segmentation', 'segmentation_color')),
    ('confidence image', ('confidence',)),
    ('point cloud (organized, rgb, label, confidence)', ('points',)),
)


def best_seconds(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Fastest of ``repeats`` calls after a warm-up: the least disturbed by other load."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


# -- the representative network ---------------------------------------------------------


class _Graph:
    """A small helper to write conv nets with onnx.helper."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f'{prefix}_{self.count}'

    def conv(self, x: str, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
             relu: bool = True) -> str:
        weight = self.rng.normal(0, np.sqrt(2 / (c_in * kernel * kernel)),
                                 (c_out, c_in, kernel, kernel)).astype(np.float32)
        w, b, y = self.name('w'), self.name('b'), self.name('conv')
        self.inits += [numpy_helper.from_array(weight, w),
                       numpy_helper.from_array(np.zeros(c_out, np.float32), b)]
        self.nodes.append(helper.make_node('Conv', [x, w, b], [y], kernel_shape=[kernel] * 2,
                                           strides=[stride] * 2, pads=[kernel // 2] * 4))
        return self.op('Relu', y) if relu else y

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        y = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [y], **attributes))
        return y

    def depthwise(self, x: str, channels: int, stride: int) -> str:
        weight = self.rng.normal(0, np.sqrt(2 / 9), (channels, 1, 3, 3)).astype(np.float32)
        w = self.name('w')
        self.inits.append(numpy_helper.from_array(weight, w))
        y = self.op('Conv', x, w, kernel_shape=[3, 3], strides=[stride] * 2, pads=[1] * 4,
                    group=channels)
        return self.op('Relu', y)

    def softmax_channels(self, x: str) -> str:
        """Softmax over channels as max/exp/sum/div: ONNX Runtime's CPU Softmax over
        axis 1 of NCHW took 0.80 s at 32x352x1216 here, this form 0.10 s."""
        axes = self.name('axes')
        self.inits.append(numpy_helper.from_array(np.array([1], np.int64), axes))
        shifted = self.op('Sub', x, self.op('ReduceMax', x, axes=[1], keepdims=1))
        exp = self.op('Exp', shifted)
        return self.op('Div', exp, self.op('ReduceSum', exp, axes, keepdims=1))

    def upsample(self, x: str, factor: int = 2) -> str:
        scales = self.name('scales')
        self.inits.append(numpy_helper.from_array(
            np.array([1, 1, factor, factor], np.float32), scales))
        return self.op('Resize', x, '', scales, mode='linear')


def representative_card() -> ModelCard:
    names = tuple(f'class_{i}' for i in range(NUM_CLASSES))
    palette = tuple((17 * i % 256, 53 * i % 256, 97 * i % 256) for i in range(NUM_CLASSES))
    return ModelCard(
        name='bench_representative', recipe='bench', architecture='light encoder-decoder (random weights)',
        input=InputSpec(name='image', height=HEIGHT, width=WIDTH),
        heads={'depth': HeadSpec('depth', 'normalized_log'), 'intervals': HeadSpec('intervals'),
               'confidence': HeadSpec('confidence'), 'segmentation': HeadSpec('segmentation')},
        camera=CameraSpec(focal_length_px=KITTI_FX), depth_coding=MULTIDEPTH_KITTI,
        classes=ClassSpec(names=names, palette=palette))


def representative_model(path: Path) -> Path:
    """The default recipe's shape (training/nets/default.py) with random weights.

    A depthwise-separable encoder to 1/32, an FPN-style decoder of
    DECODER_WIDTH channels at 1/4, a 3x3 + 1x1 head per task at 1/4,
    bilinear upsampling to the input, then the exporter's arg-max and
    confidence ops at full resolution.
    """
    g = _Graph(np.random.default_rng(SEED))
    x, c_in, stages = g.conv('image', 3, STEM_CHANNELS, stride=2), STEM_CHANNELS, []
    for c in ENCODER_CHANNELS:  # 1/4, 1/8, 1/16, 1/32
        x = g.conv(g.depthwise(x, c_in, stride=2), c_in, c, kernel=1)
        stages.append((x, c))
        c_in = c
    x = g.conv(stages[-1][0], stages[-1][1], DECODER_WIDTH, kernel=1)
    for skip, c in reversed(stages[:-1]):  # top-down to 1/4
        x = g.op('Add', g.upsample(x), g.conv(skip, c, DECODER_WIDTH, kernel=1, relu=False))
    x = g.conv(x, DECODER_WIDTH, DECODER_WIDTH)

    def head(out: int) -> str:
        hidden = g.conv(x, DECODER_WIDTH, HEAD_WIDTH)
        return g.upsample(g.conv(hidden, HEAD_WIDTH, out, kernel=1, relu=False), OUTPUT_STRIDE)

    n = MULTIDEPTH_KITTI.num_intervals
    depth = g.op('Sigmoid', head(1))
    interval_logits, class_logits = head(n), head(NUM_CLASSES)
    g.nodes += [
        helper.make_node('Identity', [depth], ['depth']),
        helper.make_node('Cast', [g.op('ArgMax', interval_logits, axis=1, keepdims=1)],
                         ['intervals'], to=TensorProto.INT32),
        helper.make_node('Cast', [g.op('ArgMax', class_logits, axis=1, keepdims=1)],
                         ['segmentation'], to=TensorProto.INT32),
        helper.make_node('ReduceMax', [g.softmax_channels(interval_logits)],
                         ['confidence'], axes=[1], keepdims=1),
    ]
    shape = [1, 1, HEIGHT, WIDTH]
    outputs = [helper.make_tensor_value_info(name, kind, shape) for name, kind in (
        ('depth', TensorProto.FLOAT), ('intervals', TensorProto.INT32),
        ('confidence', TensorProto.FLOAT), ('segmentation', TensorProto.INT32))]
    graph = helper.make_graph(
        g.nodes, 'bench_representative',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, HEIGHT, WIDTH])],
        outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    model.ir_version = 8
    embed_card(model, representative_card())
    onnx.save(model, str(path))
    return path


# -- the measurement ----------------------------------------------------------------------


def choose_model(folder: Path) -> tuple[Path, str]:
    if DEFAULT_MODEL.is_file():
        predictor = Predictor(DEFAULT_MODEL)
        if predictor.input_size == (WIDTH, HEIGHT):
            return DEFAULT_MODEL, f'bundled model {DEFAULT_MODEL.name}'
    return representative_model(folder / 'representative.onnx'), (
        f'representative encoder-decoder built by the bench ({DEFAULT_MODEL.name} '
        f'absent or not {WIDTH}x{HEIGHT})')


def measure(predictor: Predictor) -> list[tuple[str, float]]:
    """(stage, seconds per frame) for every stage of one frame; 'network' among them."""
    rng = np.random.default_rng(SEED)
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec = 1
    msg = array_to_image(rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8), 'bgr8', header)
    camera = PinholeCamera(WIDTH, HEIGHT, KITTI_FX, KITTI_FX, WIDTH / 2, HEIGHT / 2)
    heads = predictor.heads
    outputs = [predictor.card.heads[h].output for h in heads]
    builder = OutputBuilder(predictor.card)
    size = predictor.input_size

    rgb = image_to_rgb(msg)
    tensor = predictor.preprocess(rgb)
    raw = predictor.backend.run(tensor, outputs)
    prediction = predictor.decode(raw, heads, predictor.focal_scale(camera.fx, WIDTH))
    every_output = available_outputs(predictor.card)
    messages = builder.build(every_output, header, prediction, rgb, camera, size, CloudSettings())

    stages = [
        ('image -> rgb (bgr8)', best_seconds(lambda: image_to_rgb(msg))),
        ('preprocess (resize, normalise, NCHW)', best_seconds(lambda: predictor.preprocess(rgb))),
        ('network', best_seconds(lambda: predictor.backend.run(tensor, outputs),
                                   NETWORK_REPEATS)),
        ('decode heads (log depth -> m, labels)',
         best_seconds(lambda: predictor.decode(raw, heads, 1.0))),
    ]
    for stage, group in BUILD_STAGES:
        wanted = [o for o in group if o in every_output]
        if wanted:
            stages.append((stage, best_seconds(
                lambda w=wanted: builder.build(w, header, prediction, rgb, camera, size,  # type: ignore[misc]
                                               CloudSettings()))))
    stages.append(('publish: serialise every message', best_seconds(
        lambda: [serialize_message(m) for m in messages.values()])))
    return stages


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, what = choose_model(Path(folder))
        predictor = Predictor(path, options=BackendOptions())
        stages = measure(predictor)
        backend = predictor.description
    network = dict(stages)['network']
    overhead = sum(seconds for stage, seconds in stages if stage != 'network')
    print(f'network: {what}; {backend}')
    print(f'input {WIDTH}x{HEIGHT} bgr8, every output on; best of {REPEATS} '
          f'({NETWORK_REPEATS} for the network)\n')
    print(f'| {"stage":<48} | {"ms / frame":>10} | {"share of inference":>18} |')
    print(f'|{"-" * 50}|{"-" * 12}|{"-" * 20}|')
    for stage, seconds in stages:
        print(f'| {stage:<48} | {seconds * 1e3:>10.2f} | {seconds / network:>17.1%} |')
    print(f'| {"node overhead (all but the network)":<48} | {overhead * 1e3:>10.2f} | '
          f'{overhead / network:>17.1%} |')


if __name__ == '__main__':
    main()
