"""The choices of one evaluation run, shared by offline and live replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtdepth_ros.evaluation.bag_reader import DEFAULT_STAMP_TOLERANCE_S, BagReader, BagTopics
from mtdepth_ros.evaluation.protocols import Protocol, get_protocol


@dataclass
class EvalOptions:
    """Every choice of a run; the CLI flags map one to one."""

    protocol: str = 'raw'
    crop: str | None = None  # overrides of the protocol's choices; None = as the protocol says
    gt_frame: str | None = None
    input_crop: str | None = None
    median_scaling: bool | None = None
    flip_tta: bool | None = None
    averaging: str | None = None
    range_edges: tuple[float, ...] | None = None
    topics: BagTopics = field(default_factory=BagTopics)
    tolerance_s: float = DEFAULT_STAMP_TOLERANCE_S
    backends: tuple[str, ...] = ('onnxruntime',)
    focal_correction: bool = True  # as the node's default: scale by live fx / training fx
    ground_contact: bool = False  # as the node's parameter: standing things at their ground's depth
    label_classes: tuple[str, ...] | None = None  # the labels' class names, to check the card's
    max_frames: int | None = None
    start: int = 0
    step: int = 1
    panels: int = 4
    write_predictions: bool = True
    progress: bool = True
    rate: float = 1.0  # live: playback speed factor
    node_args: tuple[str, ...] = ()  # live: extra --ros-args for the node (e.g. '-p', 'x:=1')
    startup_timeout_s: float = 60.0  # live: how long the node may take to come up

    def resolved_protocol(self) -> Protocol:
        changes = {name: value for name, value in (
            ('crop', self.crop), ('gt_frame', self.gt_frame), ('input_crop', self.input_crop),
            ('median_scaling', self.median_scaling), ('flip_tta', self.flip_tta),
            ('averaging', self.averaging)) if value is not None}
        return get_protocol(self.protocol, **changes)


def make_reader(bag: Path, options: EvalOptions, **extra: Any) -> BagReader:
    """The bag reader that selects the frames ``options`` asks for."""
    return BagReader(bag, options.topics, tolerance_s=options.tolerance_s,
                     max_frames=options.max_frames, start=options.start, step=options.step,
                     **extra)
