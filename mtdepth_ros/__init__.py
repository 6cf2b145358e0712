"""mtdepth_ros: monocular multi-task depth for ROS 2 (the vehicle half).

Four rooms, one concern each; imports point down only (docs/layout.md):

- ``node``         the rclpy node (imports inference, conversions)
- ``evaluation``   bags, protocols, metrics, scoring, reports, replay (imports
                   inference, conversions; needs the ``eval`` extra)
- ``inference``    model card, depth coding, predictor, outputs, backends
                   (imports conversions)
- ``conversions``  messages <-> numpy, colouring, the geometry module (numpy,
                   OpenCV and message classes only; no rclpy)

Nothing here imports ``training``.
"""

__version__ = '0.1.0'
