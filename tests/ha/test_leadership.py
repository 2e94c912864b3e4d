"""Leadership with scripted electors: election, renewal, stepping down in time, hand-over."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from traitlets.config import Config

from raworc_spawner.errors import InvalidConfig
from raworc_spawner.leadership import LeaderElection, Leadership, SingleElector

LEASE, RENEW, RETRY = 0.6, 0.3, 0.05
log = logging.getLogger("tests.ha.leadership")


class ScriptedElector:
    """An elector whose answers a test decides: True, False, an exception, or a hang."""

    def __init__(self, answer: Callable[[], bool] = lambda: True) -> None:
        self.identity = "me"
        self.answer = answer
        self.hang = False
        self.calls: list[tuple[float, str]] = []  # (when, "attempt" | "ok" | "released")

    async def try_acquire_or_renew(self) -> bool:
        self.calls.append((time.monotonic(), "attempt"))
        if self.hang:
            await asyncio.sleep(3600)
        held = self.answer()
        if held:
            self.calls.append((time.monotonic(), "ok"))
        return held

    async def release(self) -> None:
        self.calls.append((time.monotonic(), "released"))

    def describe(self) -> str:
        return "a scripted lock"

    def last(self, what: str) -> float:
        return max(when for when, kind in self.calls if kind == what)


class Recorder:
    """Callbacks that note when they ran."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    async def elected(self) -> None:
        self.events.append((time.monotonic(), "elected"))

    async def deposed(self) -> None:
        self.events.append((time.monotonic(), "deposed"))

    @property
    def names(self) -> list[str]:
        return [name for _, name in self.events]

    def when(self, name: str) -> float:
        return next(at for at, n in self.events if n == name)


def leadership(elector: ScriptedElector | SingleElector, recorder: Recorder) -> Leadership:
    return Leadership(
        elector,
        on_elected=recorder.elected,
        on_deposed=recorder.deposed,
        lease_seconds=LEASE,
        renew_deadline_seconds=RENEW,
        retry_seconds=RETRY,
        log=log,
    )


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_candidate_granted_the_lock_is_elected_once_and_stays_leader_while_renewing() -> (
    None
):
    elector, recorder = ScriptedElector(), Recorder()
    leader = leadership(elector, recorder)
    leader.start()
    try:
        await wait_for(lambda: leader.is_leader)
        await asyncio.sleep(RENEW * 3)
        assert leader.is_leader
        assert recorder.names == ["elected"]
        renewals = [kind for _, kind in elector.calls if kind == "ok"]
        assert len(renewals) >= 5
    finally:
        await leader.close()


@pytest.mark.asyncio
async def test_closing_a_leader_runs_on_deposed_and_then_releases_the_lock() -> None:
    elector, recorder = ScriptedElector(), Recorder()
    leader = leadership(elector, recorder)
    leader.start()
    await wait_for(lambda: leader.is_leader)
    await leader.close()
    assert recorder.names == ["elected", "deposed"]
    assert not leader.is_leader
    assert elector.last("released") >= recorder.when("deposed")
    assert [kind for _, kind in elector.calls].count("released") == 1


@pytest.mark.asyncio
async def test_closing_a_candidate_releases_without_calling_back() -> None:
    elector, recorder = ScriptedElector(lambda: False), Recorder()
    leader = leadership(elector, recorder)
    leader.start()
    await wait_for(lambda: len(elector.calls) >= 2)
    await leader.close()
    assert recorder.names == []
    assert elector.calls[-1][1] == "released"


@pytest.mark.asyncio
async def test_a_leader_that_cannot_renew_steps_down_at_its_renew_deadline_before_expiry() -> None:
    held = [True]
    elector, recorder = ScriptedElector(lambda: held[0]), Recorder()
    leader = leadership(elector, recorder)
    leader.start()
    try:
        await wait_for(lambda: leader.is_leader)
        await asyncio.sleep(RETRY * 3)
        held[0] = False
        await wait_for(lambda: "deposed" in recorder.names)
        last_renewal_attempt = max(
            when
            for (when, kind), (_, after) in zip(elector.calls, elector.calls[1:], strict=False)
            if kind == "attempt" and after == "ok"
        )
        stepped_down = recorder.when("deposed") - last_renewal_attempt
        assert RENEW - 0.01 <= stepped_down < RENEW + 0.1 < LEASE
        assert not leader.is_leader
        # Deposed by failure, it hands over at once rather than letting the lock expire.
        assert elector.last("released") >= recorder.when("deposed")
    finally:
        await leader.close()


@pytest.mark.asyncio
async def test_a_hanging_elector_counts_as_failing_and_the_leader_steps_down_in_time() -> None:
    elector, recorder = ScriptedElector(), Recorder()
    leader = leadership(elector, recorder)
    leader.start()
    try:
        await wait_for(lambda: leader.is_leader)
        elector.hang = True
        hung_at = time.monotonic()
        await wait_for(lambda: "deposed" in recorder.names)
        assert recorder.when("deposed") - hung_at < RENEW + 0.1
    finally:
        await leader.close()


@pytest.mark.asyncio
async def test_an_elector_outage_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [8]

    def answer() -> bool:
        if failures[0] > 0:
            failures[0] -= 1
            raise ConnectionError("database unreachable")
        return True

    elector, recorder = ScriptedElector(answer), Recorder()
    leader = leadership(elector, recorder)
    caplog.set_level(logging.INFO, logger=log.name)
    leader.start()
    try:
        await wait_for(lambda: leader.is_leader)
    finally:
        await leader.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "a scripted lock failed (database unreachable)" in warnings[0]
    assert sum("answers again" in r.getMessage() for r in caplog.records) == 1
    assert recorder.names == ["elected", "deposed"]


@pytest.mark.asyncio
async def test_a_failing_on_elected_callback_steps_down_and_tries_again_later() -> None:
    elector, recorder = ScriptedElector(), Recorder()
    attempts = [0]

    async def flaky_elected() -> None:
        attempts[0] += 1
        if attempts[0] == 1:
            raise RuntimeError("loops failed to start")
        await recorder.elected()

    leader = Leadership(
        elector,
        on_elected=flaky_elected,
        on_deposed=recorder.deposed,
        lease_seconds=LEASE,
        renew_deadline_seconds=RENEW,
        retry_seconds=RETRY,
        log=log,
    )
    leader.start()
    try:
        await wait_for(lambda: "elected" in recorder.names)
        assert recorder.names == ["deposed", "elected"]
        assert leader.is_leader
    finally:
        await leader.close()


@pytest.mark.asyncio
async def test_a_single_elector_is_always_leader() -> None:
    recorder = Recorder()
    leader = leadership(SingleElector("solo"), recorder)
    leader.start()
    await wait_for(lambda: leader.is_leader)
    await leader.close()
    assert recorder.names == ["elected", "deposed"]


@pytest.mark.parametrize(
    ("settings", "setting", "words"),
    [
        ({"lease_duration_seconds": 10, "renew_deadline_seconds": 10}, "renew_deadline", "less"),
        ({"renew_deadline_seconds": 2, "retry_period_seconds": 2}, "retry_period", "less"),
        ({"retry_period_seconds": 0}, "retry_period", "> 0"),
    ],
)
def test_election_settings_out_of_order_are_refused_naming_the_setting(
    settings: dict[str, float], setting: str, words: str
) -> None:
    config = Config()
    for name, value in settings.items():
        config.LeaderElection[name] = value
    with pytest.raises(InvalidConfig) as raised:
        LeaderElection(config=config).check()
    assert f"LeaderElection.{setting}_seconds=" in str(raised.value)
    assert words in str(raised.value)


def test_default_election_settings_are_client_gos_and_the_lease_is_named_after_the_instance() -> (
    None
):
    election = LeaderElection()
    election.check()
    assert (election.lease_duration_seconds, election.renew_deadline_seconds) == (15.0, 10.0)
    assert election.retry_period_seconds == 2.0
    assert election.name_for("raworc-3f9a1c0b2d") == "raworc-leader-raworc-3f9a1c0b2d"
    assert LeaderElection(lease_name="shared").name_for("x") == "shared"
