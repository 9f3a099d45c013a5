"""Time as a dependency of everything that waits: retries, polls and deadlines read `now` and call `sleep` here.

The default is the event loop's own clock (`anyio.current_time`), the one `anyio.fail_after` counts on, so the
deadlines we compute and the timeouts anyio enforces agree; under a virtual clock (trio's `MockClock`) both move
together. Tests can also pass a clock whose sleep returns at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio


@dataclass(frozen=True)
class Clock:
    now: Callable[[], float] = anyio.current_time
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep


SYSTEM_CLOCK = Clock()
