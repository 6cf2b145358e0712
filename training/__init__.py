"""mtdepth_ros training half (workstation only): ``python -m training <command>``.

It may import ``mtdepth_ros`` (depth coding, metrics, the model card);
``mtdepth_ros`` never imports it.
"""
