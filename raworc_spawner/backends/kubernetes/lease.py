"""A leader-election lock kept in a ``coordination.k8s.io/v1`` Lease, as client-go keeps it.

The record is the Lease's spec (``k8s.io/api/coordination/v1`` ``LeaseSpec``): ``holderIdentity``,
``leaseDurationSeconds``, ``acquireTime`` and ``renewTime`` (``MicroTime``: RFC 3339 with
microseconds) and ``leaseTransitions``. As in client-go's ``leaderelection.tryAcquireOrRenew``:

- whether the holder's lease has expired is judged by the *local* monotonic time at which this
  elector last saw the record change, never by the holder's clock in ``renewTime`` (clocks may be
  skewed; only their rates are assumed alike);
- a write carries the ``resourceVersion`` read, so of two candidates only one wins (409 for the
  other), and a create that finds the Lease already there (409) lost too;
- an empty ``holderIdentity`` means nobody holds it: anyone may take it at once.

>>> lease_spec("a", 15, acquired=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC), transitions=0,
...            now=dt.datetime(2030, 1, 2, 3, 4, 6, 7, tzinfo=dt.UTC))["renewTime"]
'2030-01-02T03:04:06.000007Z'
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from raworc_spawner.backends.kubernetes.apierrors import APIConflict, APINotFound
from raworc_spawner.backends.kubernetes.client import KubeClient

Obj = dict[str, Any]


def micro_time(moment: dt.datetime) -> str:
    """A ``metav1.MicroTime`` as the API server writes it: UTC, six fraction digits, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(
    holder: str, duration: int, *, acquired: dt.datetime, transitions: int, now: dt.datetime
) -> Obj:
    """The spec of a Lease held by ``holder`` and renewed ``now``."""
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": micro_time(acquired),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions,
    }


class LeaseElector:
    """Acquire and renew the Lease ``namespace/name`` as ``identity`` (see the module docstring).

    ``lease_seconds`` (a whole number of seconds, at least 1) is written as
    ``leaseDurationSeconds``: how long others wait after they last saw it renewed.
    ``attempt_timeout`` bounds each attempt, retries of the client included (keep it below the
    retry period); a timed-out attempt raises :class:`TimeoutError`.
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float,
        *,
        attempt_timeout: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if not identity:
            raise ValueError("LeaseElector needs a non-empty identity")
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.lease_seconds = max(1, round(lease_seconds))
        self.attempt_timeout = attempt_timeout
        self._client = client
        self._clock = clock
        self._wall_clock = wall_clock
        self._observed: Obj | None = None  # the last spec seen (read or written)
        self._observed_at = 0.0  # local monotonic time it was first seen
        self._lease: Obj | None = None  # the last Lease we wrote (for the renewal fast path)

    def describe(self) -> str:
        """``Lease <namespace>/<name>``."""
        return f"Lease {self.namespace}/{self.name}"

    @property
    def holder(self) -> str:
        """The holder in the record last seen ("" when free or never read)."""
        return str((self._observed or {}).get("holderIdentity") or "")

    async def try_acquire_or_renew(self) -> bool:
        """Take or renew the Lease; False when another holder's lease has not expired."""
        return await asyncio.wait_for(self._try(), self.attempt_timeout)

    async def release(self) -> None:
        """Write an empty holder if the Lease is still ours, so a successor takes it at once."""
        await asyncio.wait_for(self._release(), self.attempt_timeout)

    # -- one attempt ---------------------------------------------------------------------------

    async def _try(self) -> bool:
        if self._lease is not None and self.holder == self.identity:
            renewed = await self._renew_fast()
            if renewed:
                return True
        try:
            current = await self._client.get("leases", self.namespace, self.name)
        except APINotFound:
            return await self._create()
        spec = current.get("spec") or {}
        self._observe(spec)
        if not self._may_take(spec):
            return False
        return await self._write(current, self._next_spec(spec))

    async def _renew_fast(self) -> bool:
        """Renew from the Lease we last wrote, without a GET (client-go does the same)."""
        assert self._lease is not None and self._observed is not None
        spec = self._next_spec(self._observed)
        try:
            return await self._write(self._lease, spec)
        except APINotFound:
            return False

    async def _create(self) -> bool:
        now = self._wall_clock()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": lease_spec(
                self.identity, self.lease_seconds, acquired=now, transitions=0, now=now
            ),
        }
        try:
            created = await self._client.create("leases", self.namespace, body)
        except APIConflict:  # another candidate created it first
            return False
        self._wrote(created)
        return True

    async def _write(self, current: Obj, spec: Obj) -> bool:
        body = {**current, "spec": spec}
        try:
            stored = await self._client.replace("leases", self.namespace, self.name, body)
        except APIConflict:  # changed since read: another candidate wrote first
            self._lease = None
            return False
        self._wrote(stored)
        return True

    def _wrote(self, lease: Obj) -> None:
        self._lease = lease
        self._observed = dict(lease.get("spec") or {})
        self._observed_at = self._clock()

    def _observe(self, spec: Obj) -> None:
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = self._clock()

    def _may_take(self, spec: Obj) -> bool:
        """Free, ours, or not renewed for its duration since we first saw this record."""
        holder = spec.get("holderIdentity") or ""
        if not holder or holder == self.identity:
            return True
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        return self._observed_at + duration <= self._clock()

    def _next_spec(self, spec: Obj) -> Obj:
        """The record to write: renewed now; acquire time and transitions kept when ours."""
        now = self._wall_clock()
        transitions = int(spec.get("leaseTransitions") or 0)
        if spec.get("holderIdentity") == self.identity and spec.get("acquireTime"):
            acquired = spec["acquireTime"]
            fresh = lease_spec(
                self.identity, self.lease_seconds, acquired=now, transitions=transitions, now=now
            )
            return {**fresh, "acquireTime": acquired}
        return lease_spec(
            self.identity, self.lease_seconds, acquired=now, transitions=transitions + 1, now=now
        )

    async def _release(self) -> None:
        try:
            current = await self._client.get("leases", self.namespace, self.name)
        except APINotFound:
            return
        spec = current.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        released = {**spec, "holderIdentity": "", "renewTime": micro_time(self._wall_clock())}
        try:
            stored = await self._client.replace(
                "leases", self.namespace, self.name, {**current, "spec": released}
            )
        except APIConflict:  # written meanwhile: then it is no longer ours to release
            return
        self._lease = None
        self._observed = dict(stored.get("spec") or {})
        self._observed_at = self._clock()
