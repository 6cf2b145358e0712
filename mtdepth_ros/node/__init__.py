"""The ROS 2 node: the only room that creates an rclpy node.

Lives here: ``process`` (``main``: one lifecycle node per camera, signals,
autostart), ``mtdepth_node`` (the lifecycle node), ``camera_frames`` (one
camera's per-frame work around the network), ``scheduler`` (one inference
worker per model for every camera), ``model_pool`` (one loaded model per
process), ``parameters`` (every parameter declared once), ``diagnostics``,
``frame_slot`` (newest frame wins), ``camera_pairing`` (image <-> camera_info
by stamp), ``qos``, ``throttled_log`` (log lines that never raise).

May import: ``mtdepth_ros.inference``, ``mtdepth_ros.conversions``, rclpy.
Never ``evaluation`` (the vehicle install has no matplotlib or rosbags).
"""
