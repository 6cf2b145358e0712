# Partial stubs: only the parts of cuda-python (cuda-bindings) that mtdepth_ros uses.
