"""PullRetries: a failing pull is retried with backoff instead of failing the transfer.

A link given ``pull_retry=RetryPolicy(...)`` (all inlets) or ``inlet_retry={name: policy}``
handles its inlets' failures here:

* within the transfer: a failed pull is tried again after ``policy.delay(n)`` (n = failures
  in a row of that inlet) as long as the wait fits in the transfer's retry budget (half the
  link's interval) and the transfer has tried fewer than ``policy.max_attempts`` times;
* across transfers: once a pull gave up, the inlet is not pulled again before its backoff
  delay has passed; ticks before that skip it (counted as ``pull_skips``);
* a pull that gave up contributes no records and raises nothing: the transfer goes on with
  the other inlets and delivers what its queue holds, and the planner never stops for it;
* logging is per failure streak (``databay_bus._streaks``): the first failure with its
  traceback, a line a minute while it lasts, ``'... back after N failures'`` when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from databay_bus._clock import Clock, SystemClock
from databay_bus._streaks import FailureStreaks
from databay_bus.errors import ConfigurationError, describe
from databay_bus.observers import PullFailed
from databay_bus.queue.retry import RetryPolicy, optional_policy, policies_by_name

if TYPE_CHECKING:
    from databay_bus.inlets.base import Inlet
    from databay_bus.records import Record
    from databay_bus.update import Update

__all__ = ["PullRetries"]

_LOGGER = logging.getLogger("databay_bus.link")


@dataclass
class _InletState:
    failures: int = 0  # failed attempts in a row
    retry_at: float = 0.0  # monotonic time before which the inlet is not pulled


class PullRetries:
    """One link's pull retry policies and each inlet's failure state.

    Args:
        link: the link (its tags name it in logs; its listeners get PullFailed events).
        policy: the policy for every inlet, or None.
        per_inlet: ``{inlet name: RetryPolicy}`` overriding ``policy``.
        clock: time source; ``sleep`` waits (tests pass a FakeClock and its advance).
    """

    def __init__(
        self,
        link: Any,
        policy: RetryPolicy | None,
        per_inlet: Mapping[str, RetryPolicy] | None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._link = link
        self.policy = optional_policy(policy, "pull_retry", link)
        self.per_inlet = policies_by_name(per_inlet, "inlet_retry", "inlet", link)
        self.clock = clock or SystemClock()
        self.sleep = sleep or time.sleep
        self._states: dict[int, _InletState] = {}
        self._lock = threading.Lock()
        self._streaks = FailureStreaks(_LOGGER, clock=self.clock)
        self.failures = 0
        self.retries = 0
        self.skips = 0

    def check_inlets(self, inlets: Sequence[Inlet]) -> None:
        """Refuse an ``inlet_retry`` name that is no inlet's (a typo would go unretried)."""
        names = [inlet.name for inlet in inlets]
        for name in self.per_inlet:
            if name not in names:
                raise ConfigurationError(
                    f"{self._link}: inlet_retry names {describe(name)}, not an inlet of this "
                    f"link (its inlets: {', '.join(map(repr, names)) or 'none'})"
                )

    def use_clock(self, clock: Clock, sleep: Callable[[float], None]) -> None:
        """Read time from ``clock`` and wait with ``sleep`` (tests: a FakeClock and its
        ``advance``)."""
        self.clock, self.sleep = clock, sleep
        self._streaks = FailureStreaks(_LOGGER, clock=clock)

    def policy_for(self, inlet: Inlet) -> RetryPolicy | None:
        """The policy that applies to ``inlet``, if any."""
        return self.per_inlet.get(inlet.name, self.policy)

    def metrics(self) -> dict[str, int]:
        """Counters: failed pull attempts, retries within transfers, ticks skipped in backoff."""
        with self._lock:
            return {
                "pull_failures": self.failures,
                "pull_retries": self.retries,
                "pull_skips": self.skips,
            }

    # -- pulling -----------------------------------------------------------------------------

    def pull_sync(
        self, inlet: Inlet, update: Update, pull: Callable[[], list[Record]]
    ) -> list[Record]:
        """``pull()`` under the inlet's policy (no policy: just ``pull()``)."""
        policy = self.policy_for(inlet)
        if policy is None:
            return pull()
        deadline = self._begin(inlet)
        if deadline is None:
            return []
        attempt = 0
        while True:
            try:
                records = pull()
            except Exception as exc:
                attempt += 1
                delay = self._failed(inlet, update, policy, attempt, deadline, exc)
                if delay is None:
                    return []
                self.sleep(delay)
                continue
            self._succeeded(inlet, update)
            return records

    async def pull_async(
        self, inlet: Inlet, update: Update, pull: Callable[[], Awaitable[list[Record]]]
    ) -> list[Record]:
        """``await pull()`` under the inlet's policy; waits with ``asyncio.sleep``."""
        policy = self.policy_for(inlet)
        if policy is None:
            return await pull()
        deadline = self._begin(inlet)
        if deadline is None:
            return []
        attempt = 0
        while True:
            try:
                records = await pull()
            except Exception as exc:
                attempt += 1
                delay = self._failed(inlet, update, policy, attempt, deadline, exc)
                if delay is None:
                    return []
                if self.sleep is time.sleep:
                    await asyncio.sleep(delay)
                else:
                    self.sleep(delay)
                continue
            self._succeeded(inlet, update)
            return records

    # -- bookkeeping ---------------------------------------------------------------------------

    def _state(self, inlet: Inlet) -> _InletState:
        state = self._states.get(id(inlet))
        if state is None:
            state = self._states.setdefault(id(inlet), _InletState())
        return state

    def _begin(self, inlet: Inlet) -> float | None:
        """The transfer's retry deadline, or None when the inlet is still backing off."""
        now = self.clock.monotonic()
        state = self._state(inlet)
        if state.failures and now < state.retry_at:
            with self._lock:
                self.skips += 1
            _LOGGER.debug(
                "%s: inlet %s backing off for %.1f s more",
                self._name(),
                inlet.name,
                state.retry_at - now,
            )
            return None
        interval: float = self._link.interval.total_seconds()
        return now + interval / 2

    def _failed(
        self,
        inlet: Inlet,
        update: Update,
        policy: RetryPolicy,
        attempt: int,
        deadline: float,
        error: Exception,
    ) -> float | None:
        """Count and log a failed attempt; return the delay before retrying in this
        transfer, or None to give up until the backoff has passed."""
        state = self._state(inlet)
        state.failures += 1
        delay = policy.delay(state.failures)
        now = self.clock.monotonic()
        state.retry_at = now + delay
        retry_now = (policy.max_attempts is None or attempt < policy.max_attempts) and (
            now + delay <= deadline
        )
        with self._lock:
            self.failures += 1
            self.retries += int(retry_now)
        fields = {"link": self._name(), "inlet": inlet.name, "transfer": update.transfer_number}
        self._streaks.failed(id(inlet), f"{update}: inlet {inlet.name}", error, extra=fields)
        self._link.emit(PullFailed, update, inlet.name, state.failures, error, retry_now)
        return delay if retry_now else None

    def _succeeded(self, inlet: Inlet, update: Update) -> None:
        state = self._states.get(id(inlet))
        if state is not None and state.failures:
            state.failures = 0
            state.retry_at = 0.0
            fields = {"link": self._name(), "inlet": inlet.name, "transfer": update.transfer_number}
            self._streaks.succeeded(id(inlet), f"{update}: inlet {inlet.name}", extra=fields)

    def forget(self, inlet: Inlet) -> None:
        """Drop a removed inlet's state."""
        self._states.pop(id(inlet), None)
        self._streaks.forget(id(inlet))

    def _name(self) -> str:
        return ".".join(self._link.tags) or repr(self._link)
