"""Vendor answers kept in memory: an LRU bounded by entries and bytes, each entry with its own time to live."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    value: dict[str, Any]
    size: int
    expires: float


class ResponseCache:
    """Least-recently-used cache of JSON objects; an entry past its expiry is never served."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: str, value: dict[str, Any], *, size: int, ttl: float) -> None:
        """Keep `value` for `ttl` seconds; an object bigger than the whole budget is not kept at all."""
        if ttl <= 0 or size > self.max_bytes or self.max_entries <= 0:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = Entry(value, size, self._clock() + ttl)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size
