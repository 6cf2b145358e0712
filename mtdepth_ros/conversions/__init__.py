"""Messages <-> numpy, colouring and image geometry: the message layer, no node.

Lives here: ``images`` (Image <-> arrays), ``compressed`` (CompressedImage
<-> arrays), ``camera`` (CameraInfo <-> PinholeCamera), ``clouds`` (depth ->
PointCloud2 messages), ``cdr`` and ``cloud_bytes`` (the same messages written
straight to their serialized bytes), ``serialized_image`` (a received Image
read in place from its bytes),
``colorize`` (false colour for depth, intervals, labels), ``labels`` (label
map conventions), ``geometry`` (every resize and crop and what it does to
intrinsics, depth and labels: the one copy).

May import: numpy, OpenCV, numba, message classes (``sensor_msgs.msg`` ...).
Never rclpy, never another room of mtdepth_ros.
"""
