"""Things made once and kept: statements, rendered pieces. One bounded store, used the same way
everywhere: a store that holds as many as it may is emptied and filled again as things are asked
for (what is kept is only ever what ``make`` gives for its key, so emptying loses nothing but time)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def kept(store: dict[K, V], key: K, make: Callable[[], V], size: int) -> V:
    """``make()``, or what it gave before for ``key`` in ``store`` (at most ``size`` kept)."""
    try:
        return store[key]
    except KeyError:
        pass
    if len(store) >= size:
        store.clear()
    value = store[key] = make()
    return value
