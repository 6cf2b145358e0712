"""The trivial predictor the demo compares against: one depth, everywhere.

The mean ground-truth depth of the model's training data (recorded in its
card) predicted at every pixel, scored with the same protocol on exactly the
frames the node answered, so the two rows of the summary compare like with
like.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtdepth_ros.evaluation.bag_reader import BagReader
from mtdepth_ros.evaluation.protocols import get_protocol
from mtdepth_ros.evaluation.report import Report
from mtdepth_ros.evaluation.scoring import Scorer, default_range_edges
from mtdepth_ros.evaluation.session import PREDICTIONS_BAG, output_topic


def constant_depth_baseline(bag: Path, depth_m: float, protocol_name: str,
                            report: Report) -> dict[str, float]:
    """Headline depth metrics of ``depth_m`` everywhere on the frames ``report`` scored."""
    protocol = get_protocol(protocol_name)
    recorded = report.out_dir / PREDICTIONS_BAG
    reader = BagReader(bag, predictions={'depth': output_topic('depth')},
                       extra_paths=[recorded] if recorded.exists() else [])
    scorer = Scorer(protocol, default_range_edges(protocol.max_depth or 80.0), plot_max_m=80.0)
    for frame in reader:
        if frame.depth is None or 'depth' not in frame.predicted:
            continue  # not answered by the node: not in the model's numbers either
        constant = np.full(frame.predicted['depth'].shape, depth_m, np.float32)
        scorer.add(frame, constant, None)
    if not scorer.frames_with_depth:
        return {}
    return dict(scorer.depth_summary()['headline'])
