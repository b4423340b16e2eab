"""Reads shared by the figures of one Trends page load.

The page draws eleven figures; several need the same rollup sums, duration bins or therapy catalog for
the same filters. Inside `shared_reads()` each such read runs once and later figures get its result;
outside it (a single figure, a test) every call reads afresh. A context variable, so two page loads in
two threads never see each other's results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

#: key → result, for the page load in progress (None: no load in progress, nothing is kept)
_SHARED: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("trends_shared_reads", default=None)


@contextmanager
def shared_reads() -> Iterator[None]:
    """Within this block, reads with the same key run once."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared(key: tuple[Any, ...], read: Callable[[], T]) -> T:
    """`read()`'s result, kept under `key` for the rest of the `shared_reads` block (if one is open).
    Callers must not change what they get back (copy a frame before editing it)."""
    memo = _SHARED.get()
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    result: T = memo[key]
    return result
