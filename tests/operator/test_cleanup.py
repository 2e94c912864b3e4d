"""``raworc-spawner cleanup`` lists labelled resources without a session record; ``--delete``
removes them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .conftest import ORPHAN, Cluster, labelled

pytestmark = pytest.mark.slow


def test_cleanup_lists_orphans_and_delete_removes_their_pods_and_claims(
    deployed: Cluster, tmp_path: Path
) -> None:
    orphans = sorted(str(uuid.uuid4()) for _ in range(2))
    for sid in orphans:
        deployed.kubectl("apply", "-f", "-", stdin=ORPHAN.format(sid=sid))
    token = deployed.create_token()
    env = {"KUBERNETES_ENABLED": "true"}
    data = f"--data-dir={tmp_path / 'data'}"

    listed = deployed.spawner("cleanup", data, token=token, cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"{sid}  orphaned (run with --delete to remove)" for sid in orphans
    ]
    assert len(labelled(deployed, "pod,pvc")) == 4

    deleted = deployed.spawner("cleanup", "--delete", data, token=token, cwd=tmp_path, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.splitlines() == [f"{sid}  deleted" for sid in orphans]
    assert labelled(deployed, "pod,pvc") == []
    again = deployed.spawner("cleanup", data, token=token, cwd=tmp_path, env=env)
    assert again.stdout.strip() == "no orphaned resources"
