"""Fault injection and request counters, the levers and gauges of reliability tests."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, injected


@dataclass
class ErrorRule:
    """Fail a share of matching requests with ``code``.

    ``verb`` and ``resource`` of ``*`` match anything; ``count`` limits how many requests the
    rule fails (None for no limit).
    """

    verb: str = "*"
    resource: str = "*"
    rate: float = 1.0
    code: int = 500
    count: int | None = None
    retry_after: int = 1

    def applies(self, verb: str, resource: str) -> bool:
        return self.verb in ("*", verb) and self.resource in ("*", resource) and self.count != 0


@dataclass
class Latency:
    """Delay added to every request: ``fixed`` seconds plus a uniform ``0..jitter``."""

    fixed: float = 0.0
    jitter: float = 0.0


class Faults:
    """Injected failures; every method takes effect on the next request.

    >>> sim.faults.fail("create", resource="pods", code=503, count=2)   # doctest: +SKIP
    >>> sim.faults.set_latency(0.05, jitter=0.02)                      # doctest: +SKIP
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.rules: list[ErrorRule] = []
        self.latency = Latency()
        self.drop_watches_every: float = 0.0
        self._compact: Callable[[], None] = lambda: None
        self._restart: Callable[[], int] = lambda: 0

    def fail(
        self,
        verb: str = "*",
        *,
        resource: str = "*",
        code: int = 500,
        rate: float = 1.0,
        count: int | None = None,
        retry_after: int = 1,
    ) -> ErrorRule:
        """Add an error rule (see :class:`ErrorRule`) and return it."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, not {rate}")
        rule = ErrorRule(verb, resource, rate, code, count, retry_after)
        self.rules.append(rule)
        return rule

    def set_error_rate(
        self, verb: str, rate: float, code: int = 500, *, resource: str = "*"
    ) -> ErrorRule:
        """Fail ``rate`` (0..1) of ``verb`` requests with ``code`` until cleared."""
        return self.fail(verb, resource=resource, code=code, rate=rate)

    def set_latency(self, fixed: float, *, jitter: float = 0.0) -> None:
        self.latency = Latency(fixed, jitter)

    def set_drop_watches_every(self, seconds: float) -> None:
        """Close every open watch each ``seconds`` (0 turns it off)."""
        self.drop_watches_every = seconds

    def clear(self) -> None:
        """Remove every rule, the latency and watch dropping."""
        self.rules.clear()
        self.latency = Latency()
        self.drop_watches_every = 0.0

    def compact(self) -> None:
        """Drop the watch history: resuming from any older resourceVersion gets 410 Gone."""
        self._compact()

    def restart(self) -> int:
        """Simulate an API server restart: every open watch ends; returns how many."""
        return self._restart()

    def delay(self) -> float:
        if not self.latency.fixed and not self.latency.jitter:
            return 0.0
        return self.latency.fixed + self.rng.uniform(0, self.latency.jitter)

    def error_for(self, verb: str, resource: str) -> ApiError | None:
        """The injected error for this request, if a rule fires."""
        for rule in self.rules:
            if rule.applies(verb, resource) and self.rng.random() < rule.rate:
                if rule.count is not None:
                    rule.count -= 1
                return injected(rule.code, rule.retry_after)
        return None

    def configure(self, data: dict[str, Any]) -> None:
        """Apply a JSON description (the ``/_kubesim/faults`` control endpoint)."""
        if data.get("clear"):
            self.clear()
        for rule in data.get("errors", []):
            self.fail(
                rule.get("verb", "*"),
                resource=rule.get("resource", "*"),
                code=int(rule.get("code", 500)),
                rate=float(rule.get("rate", 1.0)),
                count=rule.get("count"),
                retry_after=int(rule.get("retry_after", 1)),
            )
        if "latency" in data:
            self.set_latency(
                float(data["latency"].get("fixed", 0)),
                jitter=float(data["latency"].get("jitter", 0)),
            )
        if "drop_watches_every" in data:
            self.set_drop_watches_every(float(data["drop_watches_every"]))
        if data.get("compact"):
            self.compact()
        if data.get("restart"):
            self.restart()


@dataclass
class Counters:
    """Requests by (verb, resource, status code), plus open watches; readable and resettable."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    watches_open: int = 0
    watches_opened: int = 0

    def record(self, verb: str, resource: str, code: int) -> None:
        self.requests[(verb, resource, code)] += 1

    def total(
        self, verb: str | None = None, resource: str | None = None, code: int | None = None
    ) -> int:
        """Requests matching every given filter."""
        return sum(
            n
            for (v, r, c), n in self.requests.items()
            if (verb is None or v == verb)
            and (resource is None or r == resource)
            and (code is None or c == code)
        )

    def reset(self) -> None:
        self.requests.clear()
        self.watches_opened = 0
        self.started = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view: rows of verb/resource/code/count, totals and open watches."""
        rows = [
            {"verb": v, "resource": r, "code": c, "count": n}
            for (v, r, c), n in sorted(self.requests.items())
        ]
        return {
            "requests": rows,
            "total": self.total(),
            "watches_open": self.watches_open,
            "watches_opened": self.watches_opened,
            "seconds": round(time.monotonic() - self.started, 3),
        }
