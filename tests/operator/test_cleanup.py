"""``raworc-spawner cleanup`` lists this instance's resources without a session record
(``--delete`` removes them) and other instances' objects (never touched)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .conftest import ORPHAN, Cluster, labelled

pytestmark = pytest.mark.slow

INSTANCE = "raworc-test"
#: An orphan of this instance: labelled with it, but without the annotations that re-adopt.
OWNED = ORPHAN.replace(
    'session-id: "{sid}"', f'session-id: "{{sid}}", raworc.dev/instance: {INSTANCE}'
)


def test_cleanup_lists_orphans_and_delete_removes_their_pods_and_claims(
    deployed: Cluster, tmp_path: Path
) -> None:
    orphans = sorted(str(uuid.uuid4()) for _ in range(2))
    for sid in orphans:
        deployed.kubectl("apply", "-f", "-", stdin=OWNED.format(sid=sid))
    unowned = str(uuid.uuid4())  # as an older version made it: no owner instance
    deployed.kubectl("apply", "-f", "-", stdin=ORPHAN.format(sid=unowned))
    token = deployed.create_token()
    env = {"KUBERNETES_ENABLED": "true", "RAWORC_INSTANCE_NAME": INSTANCE}
    data = f"--data-dir={tmp_path / 'data'}"
    untouched = [
        f"{kind}/{name}  names no owner instance: never touched (a server whose store has its "
        "session claims it; otherwise remove it yourself)"
        for kind, name in sorted(
            [("pod", f"session-{unowned}"), ("persistentvolumeclaim", f"session-pvc-{unowned}")]
        )
    ]

    listed = deployed.spawner("cleanup", data, token=token, cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.splitlines()) == sorted(
        [f"{sid}  orphaned (run with --delete to remove)" for sid in orphans] + untouched
    )
    assert len(labelled(deployed, "pod,pvc")) == 6

    deleted = deployed.spawner("cleanup", "--delete", data, token=token, cwd=tmp_path, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert sorted(deleted.stdout.splitlines()) == sorted(
        [f"{sid}  deleted" for sid in orphans] + untouched
    )
    assert len(labelled(deployed, "pod,pvc")) == 2  # the unowned pair is left alone
    again = deployed.spawner("cleanup", data, token=token, cwd=tmp_path, env=env)
    assert sorted(again.stdout.splitlines()) == sorted(untouched)
