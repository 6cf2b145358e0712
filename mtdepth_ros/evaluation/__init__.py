"""Scoring a model on recorded data: bags, protocols, metrics, reports, replay.

Lives here: ``bag_source`` / ``bag_reader`` / ``bag_writer`` (rosbag2
through ``rosbags``), ``protocols`` (which pixels count, KITTI and NYU),
``metrics``, ``scoring``, ``session`` (one run: predictions, scores, output
bag), ``report``, ``plots``, ``panels``, ``options`` (what offline and live
replay share), ``offline`` / ``live`` replay, ``live_node`` (the node under
test as a child process, and its transport settings), and ``evaluate`` (the
``mtdepth-eval`` command).

May import: ``mtdepth_ros.inference``, ``mtdepth_ros.conversions``,
matplotlib, rosbags, mcap (the ``eval`` extra). Never ``node``: live replay
runs the node as another process.
"""
