"""mtdepth_ros: monocular multi-task depth for ROS 2 (vehicle half).

The core modules are plain numpy; rclpy is imported only by ``node``.
"""

__version__ = '0.1.0'
