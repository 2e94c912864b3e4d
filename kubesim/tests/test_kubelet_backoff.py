"""The restart back-off schedule (the kubelet's: 10 s doubling to 5 min, reset after 10 min)."""

from __future__ import annotations

import pytest

from kubesim.control.backoff import RestartBackoff, go_duration


def test_the_first_restart_is_immediate_then_each_waits_twice_as_long_up_to_the_cap() -> None:
    backoff = RestartBackoff(base=10.0, cap=300.0)
    waits = []
    now = 0.0
    for _ in range(8):
        wait = backoff.delay_before_restart("c", now=now)
        waits.append(wait)
        now += wait
        if wait:
            backoff.restarting("c", now=now)
        now += 1.0  # the container runs a second, then exits again
    assert waits == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]


def test_a_container_that_ran_for_twice_the_cap_restarts_at_once_again() -> None:
    backoff = RestartBackoff(base=10.0, cap=300.0)
    assert backoff.delay_before_restart("c", now=0.0) == 0.0
    assert backoff.delay_before_restart("c", now=5.0) == 10.0
    backoff.restarting("c", now=15.0)
    assert backoff.delay_before_restart("c", now=15.0 + 601.0) == 0.0
    assert backoff.current("c") == 10.0


def test_containers_back_off_independently() -> None:
    backoff = RestartBackoff(base=1.0, cap=8.0)
    assert backoff.delay_before_restart("a", now=0.0) == 0.0
    assert backoff.delay_before_restart("a", now=1.0) == 1.0
    assert backoff.delay_before_restart("b", now=1.0) == 0.0


def test_a_cap_below_the_base_does_not_shrink_the_back_off() -> None:
    backoff = RestartBackoff(base=10.0, cap=3.0)
    backoff.delay_before_restart("c", now=0.0)
    backoff.restarting("c", now=1.0)
    assert backoff.current("c") == 10.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10, "10s"), (20, "20s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"), (0.2, "200ms")],
)
def test_back_off_durations_are_printed_as_go_prints_them(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
