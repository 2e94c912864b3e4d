"""Real processes in pods (kubesim's process mode): exits leave ready at once, and what a user
sent reaches the process verbatim through the kubelet's ``$(VAR)`` expansion."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubesim import KubeSim, KubeSimConfig
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.requests import parse_create
from tests.k8s_backend.conftest import ManagerFactory
from tests.k8s_backend.lifecycle import NS, eventually, session_spec, started_backend
from tests.k8s_backend.test_sessions_on_kubernetes import wait_state

ALICE = Principal("alice")
#: Writes what the process sees to the workspace, then stays up (a shell variable, not $(…)).
WRITE_ENV = (
    'printf %s "$STARTING_PROMPT" > /workspace/prompt.txt; '
    'printf %s "$SESSION_NAME" > /workspace/name.txt; '
    'printf %s "$GREETING" > /workspace/greeting.txt; '
    'printf %s "$NOTE" > /workspace/note.txt; '
    'printf %s "$1" > /workspace/arg.txt; '
    "exec sleep 3600"
)
PROMPT = "Budget: $$5; echo $(SESSION_ID)"
NAME = "cost $(HOME) $$ $"


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    """A kubesim whose kubelet runs the session's command as a process."""
    return KubeSimConfig(namespaces=["default", "kube-system", NS], run_processes=True, seed=7)


def workspace(sim: KubeSim, sid: str) -> Path:
    """The host directory behind the session's workspace claim."""
    assert sim.kubelet.host is not None
    return sim.kubelet.host.volumes.claim_dir(NS, f"session-pvc-{sid}")


async def read_back(sim: KubeSim, sid: str, name: str) -> str:
    """A file the session process wrote to its workspace (waiting until it is there)."""
    path = workspace(sim, sid) / name
    await eventually(path.exists)
    return path.read_text()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "state", "reason", "error"),
    [
        (3, "error", "Error", "Error: container session exited with code 3: Error"),
        (0, "idle", "Completed", None),
    ],
)
async def test_a_server_that_exits_moves_its_session_out_of_ready_at_once(
    kubesim: KubeSim,
    make_manager: ManagerFactory,
    code: int,
    state: str,
    reason: str,
    error: str | None,
) -> None:
    manager = await make_manager(KubernetesSettings__command=["sh", "-c", f"sleep 1; exit {code}"])
    session = await manager.create(ALICE, parse_create({"name": "short-lived"}))
    await wait_state(manager, session.id, "ready")
    began = time.monotonic()

    left = await wait_state(manager, session.id, state, timeout=3)

    assert time.monotonic() - began < 2  # the script's second, then the watch event
    assert left.termination_reason == reason
    assert left.error == error


@pytest.mark.asyncio
async def test_a_prompt_and_a_name_reach_the_process_exactly_as_sent(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    manager = await make_manager(
        KubernetesSettings__command=["sh", "-c", WRITE_ENV],
        # An operator's value may mean $(VAR): it is not escaped, and sees the user's value.
        KubernetesSettings__extra_env={"GREETING": "hello $(SESSION_NAME)"},
    )
    session = await manager.create(ALICE, parse_create({"name": NAME, "starting_prompt": PROMPT}))
    await wait_state(manager, session.id, "ready")

    assert await read_back(kubesim, session.id, "prompt.txt") == PROMPT
    assert await read_back(kubesim, session.id, "name.txt") == NAME
    assert await read_back(kubesim, session.id, "greeting.txt") == f"hello {NAME}"


@pytest.mark.asyncio
async def test_a_hub_command_and_env_reach_the_process_exactly_as_sent(
    kubesim: KubeSim,
) -> None:
    argument = "$(SESSION_ID) costs $$5"
    spec = session_spec(
        command=["sh", "-c", WRITE_ENV, "sh", argument],
        env={"NOTE": "$(STARTING_PROMPT) and $$"},
        starting_prompt=PROMPT,
    )
    async with started_backend(kubesim) as (backend, _):
        await backend.create(spec)
        await backend.wait_ready(spec.session_id, timeout=5)
        assert await read_back(kubesim, spec.session_id, "arg.txt") == argument
        assert await read_back(kubesim, spec.session_id, "note.txt") == "$(STARTING_PROMPT) and $$"
        assert await read_back(kubesim, spec.session_id, "prompt.txt") == PROMPT
        await backend.delete(spec.session_id)
