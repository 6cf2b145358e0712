"""Procedural scenes (ray cast in numpy) written in the real datasets' formats."""

# What a seed renders, as a number: bump it with any change that alters the images,
# depth or labels a seed gives (a scene, a material, the renderer). Trees record it in
# synth_info.json, and ``synth --resume`` refuses to extend a tree of another version
# (it would mix two looks in one tree). Trees from before it was recorded have none.
SCENES_VERSION = 2  # 2: cars have a painted roof over darker windows
