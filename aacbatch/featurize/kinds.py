"""The base class of feature kinds (Lhotse style): one module each, registered by name in
:data:`aacbatch.catalog.FEATURE_KINDS` and loaded on demand.

A kind declares what it computes per item (:class:`~aacbatch.cache.ArraySpec`), the identity
of any model it uses (part of the fingerprint), and computes a block of items at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aacbatch import catalog
from aacbatch.cache import ArraySpec
from aacbatch.registry.store import Registry

# Called with (position in block, error) for an item that cannot be computed: raises, or
# records the item as bad (``--skip-bad``) so the kind writes a placeholder and goes on.
OnBad = Callable[[int, Exception], None]


@dataclass
class Context:
    """What a kind may need beyond its parameters: resolved locations and the dataset.

    Picklable (worker processes receive it); the registry is opened on demand.
    """

    settings: object
    dataset: str

    @property
    def registry(self) -> Registry:
        return Registry(self.settings)


class FeatureKind:
    item: str = "clip"  # or "caption"

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: dict, context: Context):
        self.params = self.Params(**params)
        self.context = context

    def arrays(self) -> dict[str, ArraySpec]:
        raise NotImplementedError

    def default_name(self, spec_name: str) -> str:
        """Name of the feature set in the registry; kinds built from a run name it in theirs."""
        return spec_name

    def lengths(self, items: list) -> dict[str, np.ndarray]:
        """Per-item time lengths of the ragged arrays, known before computing anything."""
        return {}

    def identity(self) -> dict | None:
        """Model identity (names + content hashes); None when no model is involved."""
        return None

    def compute(self, items: list, on_bad: OnBad) -> dict[str, list[np.ndarray] | np.ndarray]:
        raise NotImplementedError


def kind_class(name: object, source: str = "spec") -> type[FeatureKind]:
    return catalog.feature_kind(name, source).kind_class()
