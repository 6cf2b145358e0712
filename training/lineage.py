"""What a run's weights were trained on, across ``model.init_from`` stages.

A stage that starts from another run's weights has seen that run's data too, so
the model card names every tree back to the first stage. Each checkpoint records
its own data (``data.training_data``, from the data module) and, since the
module reads its ``init_from`` checkpoint anyway, the parent's whole lineage
(``INIT_FROM_DATA``): the record survives the parents' deletion. Checkpoints
written before that record are followed back through their ``init_from`` paths.
An exported model (``init_from: model.onnx``) carries its lineage in its card's
``training_data``, written at export from its checkpoint's own: that text is the
parent's lineage as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.model_file import read_card
from training.checkpoints import EXTRA_KEY, load_checkpoint
from training.data.mixed import source_name

INIT_FROM_DATA = 'init_from_training_data'  # the parent's lineage, in a checkpoint's extra
MAX_LINEAGE = 8  # init_from checkpoints followed back, at most (a cycle stops here too)
BEFORE = '; before that, from weights trained on '
EXPORTED_SUFFIX = '.onnx'  # an init_from path ending so names an exported model


def training_data(extra: Mapping[str, Any], depth: int = MAX_LINEAGE) -> str:
    """What a checkpoint's weights were trained on, back through every ``init_from``.

    ``extra`` is a checkpoint's own entry (resolved config, data facts). The same
    data twice in a row (a stage that only restarted the schedule) is said once;
    a parent checkpoint that is gone or unreadable is named as such. Empty for a
    checkpoint from before the data facts were recorded.
    """
    own = _recorded_data(extra)
    if not own:
        return ''
    before = parent_training_data(extra, depth)
    if not before:
        return own
    return before if before == own or before.startswith(own + BEFORE) else own + BEFORE + before


def parent_training_data(extra: Mapping[str, Any], depth: int = MAX_LINEAGE) -> str:
    """The lineage of the weights a run started from: recorded, else read from its
    ``init_from`` checkpoint; empty when it started from scratch."""
    recorded = extra.get(INIT_FROM_DATA)
    if recorded:
        return str(recorded)
    parent = init_from(extra)
    if not parent or depth <= 0:
        return ''
    if is_exported(parent):
        return exported_lineage(parent)
    try:
        parent_extra = load_checkpoint(parent, mmap=True).get(EXTRA_KEY) or {}
    except FileNotFoundError:
        return f'{parent} (not found: its training data unknown)'
    except ValueError as error:  # not a checkpoint, or not loadable safely
        return f'{parent} (unreadable: {error})'
    return checkpoint_lineage(parent, parent_extra, depth - 1)


def checkpoint_lineage(path: str, extra: Mapping[str, Any], depth: int = MAX_LINEAGE) -> str:
    """:func:`training_data` of the checkpoint at ``path`` whose own entry is ``extra``,
    or the path marked unrecorded (a checkpoint from before the data facts were kept)."""
    return training_data(extra, depth) or f'{path} (unrecorded)'


def is_exported(path: str | Path) -> bool:
    """Whether an ``init_from`` path names an exported model rather than a checkpoint."""
    return str(path).lower().endswith(EXPORTED_SUFFIX)


def exported_lineage(path: str | Path) -> str:
    """What the weights of the exported model at ``path`` were trained on: its card's
    ``training_data``, which names every tree back to the first stage."""
    if not Path(path).is_file():
        return f'{path} (not found: its training data unknown)'
    try:
        card = read_card(path)
    except CardError as error:
        return f'{path} (unreadable: {error})'
    return card.training_data or f'{path} (unrecorded)'


def init_from(extra: Mapping[str, Any]) -> str | None:
    """The ``model.init_from`` path of a checkpoint's resolved config."""
    return ((extra.get('config') or {}).get('model') or {}).get('init_from')


# What a mixture's card said before the mixture named its sources (2026-12-04)
UNNAMED_MIXTURE = 'training.data.mixed.MixedSources at . ('


def _recorded_data(extra: Mapping[str, Any]) -> str:
    """The checkpoint's own training data; a mixture's recorded before mixtures named their
    sources is named from the recipe's sources in the checkpoint's config."""
    text = str((extra.get('data') or {}).get('training_data', ''))
    data = (extra.get('config') or {}).get('data') or {}
    sources = (data.get('train_args') or {}).get('sources')
    if text.startswith(UNNAMED_MIXTURE) and sources:
        names = ' + '.join(source_name(s) for s in sources)
        text = f'{names} ({text[len(UNNAMED_MIXTURE):]}'
    return text
