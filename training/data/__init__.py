"""Datasets (KITTI, NYU Depth v2, Cityscapes-style labels) and the procedural scene generator.

The batch dictionary's keys live in :mod:`training.data.base`; the class lists
in :mod:`training.data.classes`; ``python -m training synth`` runs
:mod:`training.data.synth.cli`.
"""
