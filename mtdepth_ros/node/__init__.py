"""The ROS 2 node: the only room that creates an rclpy node.

Lives here: ``mtdepth_node`` (the node and ``main``), ``parameters`` (every
parameter declared once), ``diagnostics``, ``frame_slot`` (newest frame
wins), ``camera_pairing`` (image <-> camera_info by stamp), ``qos``,
``throttled_log`` (log lines that never raise).

May import: ``mtdepth_ros.inference``, ``mtdepth_ros.conversions``, rclpy.
Never ``evaluation`` (the vehicle install has no matplotlib or rosbags).
"""
