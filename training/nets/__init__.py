"""Networks: a registry of multi-task models built from shared parts.

``build_model(name, **model_args)``, ``build_loss(name, **loss_options)`` and
``list_models()``; see :mod:`training.nets.registry` for how to add a model.
"""

from training.nets.registry import (
    ModelSpec, MultiTaskNet, Stage, build_loss, build_model, get_spec, list_models,
    register_model)

__all__ = ['ModelSpec', 'MultiTaskNet', 'Stage', 'build_loss', 'build_model', 'get_spec',
           'list_models', 'register_model']
