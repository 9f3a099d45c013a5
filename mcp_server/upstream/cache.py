"""Vendor answers kept in memory as compact JSON: an LRU bounded by entries and bytes, each entry with its own time
to live. Holding the serialized text, not the parsed objects, makes the byte budget the memory actually held (a
parsed answer of many small keys takes ten times its JSON); a hit is parsed again, a few microseconds per KB."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    json: bytes
    expires: float


class ResponseCache:
    """Least-recently-used cache of JSON texts; an entry past its expiry is never served."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of JSON held."""
        return self._bytes

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self.discard(key)
            return None
        self._entries.move_to_end(key)
        return entry.json

    def put(self, key: str, json: bytes, *, ttl: float) -> None:
        """Keep `json` for `ttl` seconds. Whatever was kept under `key` goes first, even when the new answer is not
        kept (no time to live, or bigger than the whole budget): nothing older than the newest answer is served."""
        self.discard(key)
        if ttl <= 0 or len(json) > self.max_bytes or self.max_entries <= 0:
            return
        self._entries[key] = Entry(json, self._clock() + ttl)
        self._bytes += len(json)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self.discard(next(iter(self._entries)))

    def discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.json)
