"""One exported model from an image to decoded outputs: no rclpy, no bags.

Lives here: ``card`` (the model card in the ONNX metadata), ``depth_coding``
(normalised log depth and intervals), ``predictor`` (preprocess -> backend
-> decode), ``outputs`` (which heads each output needs and its message for a
frame, shared by the node and the evaluation's output bags), ``resources``
(the installed model and config files), ``backends/`` (ONNX Runtime,
TensorRT, the engine cache and builder).

May import: ``mtdepth_ros.conversions``, numpy, OpenCV, ONNX Runtime, onnx,
TensorRT. Never ``node`` or ``evaluation``.
"""
