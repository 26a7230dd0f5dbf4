"""Run one function per item side by side (threads: each waits on its own external command), and
answer as if it had run in order: the results in the items' order, the first item's failure raised
once every item has ended (none is left running behind the error)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def side_by_side(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="lab") as pool:
        futures = [pool.submit(fn, item) for item in items]
        errors = [f.exception() for f in futures]  # waits for every one
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]
