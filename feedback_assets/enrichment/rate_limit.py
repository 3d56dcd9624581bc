"""Client-side RPM/TPM budgets, so a run paces itself under the provider's limits instead of hitting 429s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """A bucket of `capacity` units refilled continuously at capacity per `period` seconds."""

    def __init__(self, capacity: float, period: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.rate = capacity / period
        self._level = capacity
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` units are available (0 when they are)."""
        self._refill()
        amount = min(amount, self.capacity)
        return max(0.0, (amount - self._level) / self.rate)

    async def acquire(self, amount: float) -> None:
        async with self._lock:
            while (delay := self.wait_time(amount)) > 0:
                await asyncio.sleep(delay)
            self._level -= min(amount, self.capacity)


class RateBudget:
    """Requests per minute and tokens per minute together; either may be unlimited (None)."""

    def __init__(self, rpm: int | None, tpm: int | None):
        self._requests = TokenBucket(rpm) if rpm else None
        self._tokens = TokenBucket(tpm) if tpm else None

    async def acquire(self, tokens: int) -> None:
        if self._requests:
            await self._requests.acquire(1)
        if self._tokens:
            await self._tokens.acquire(tokens)
