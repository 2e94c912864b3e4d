"""Workloads (Deployments, Jobs, CronJobs) are stored, defaulted and validated only.

No controller acts on them: a Deployment creates no ReplicaSets, a Job no pods, a CronJob no
Jobs. Defaults follow the API server's ``SetDefaults_*`` functions for apps/v1 and batch/v1;
a Job gets the selector and template labels its strategy generates from its UID.
"""

from __future__ import annotations

import re

from .objects import Obj
from .validation import Cause, forbidden_change, invalid_value, not_supported, required

JOB_RESTART_POLICIES = ("OnFailure", "Never")
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")


def default_deployment(deployment: Obj) -> None:
    spec = deployment.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    deployment["status"] = {}


def validate_deployment(deployment: Obj) -> list[Cause]:
    """The selector must select the template's labels (no controller acts on it)."""
    return _selector_matches(deployment.get("spec") or {})


def validate_deployment_update(old: Obj, new: Obj) -> list[Cause]:
    old_selector = (old.get("spec") or {}).get("selector")
    if old_selector != (new.get("spec") or {}).get("selector"):
        return [forbidden_change("spec.selector", "field is immutable")]
    return []


def _selector_matches(spec: Obj, prefix: str = "spec") -> list[Cause]:
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return [
            invalid_value(
                f"{prefix}.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        ]
    return []


def _default_job_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", False)
    failed_only = "podFailurePolicy" in spec
    spec.setdefault("podReplacementPolicy", "Failed" if failed_only else "TerminatingOrFailed")


def default_job(job: Obj) -> None:
    """Defaults, then the selector and pod labels the Job strategy generates from the UID."""
    spec = job.setdefault("spec", {})
    _default_job_spec(spec)
    uid, name = job["metadata"].get("uid", ""), job["metadata"].get("name", "")
    if not spec.get("manualSelector") and not spec.get("selector") and uid:
        spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}
        template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
        labels = template_meta.setdefault("labels", {})
        labels.update(
            {CONTROLLER_UID: uid, JOB_NAME: name, "controller-uid": uid, "job-name": name}
        )
    job["status"] = {}


def _check_job_template(spec: Obj, prefix: str) -> list[Cause]:
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    policy = pod_spec.get("restartPolicy")
    field = f"{prefix}.template.spec.restartPolicy"
    if policy is None:
        return [required(field)]
    if policy not in JOB_RESTART_POLICIES:
        return [not_supported(field, policy, JOB_RESTART_POLICIES)]
    return []


def validate_job(job: Obj) -> list[Cause]:
    """A Job's pods must not restart ``Always``; its selector must match its template."""
    spec = job.get("spec") or {}
    return _check_job_template(spec, "spec") + _selector_matches(spec)


def validate_job_update(old: Obj, new: Obj) -> list[Cause]:
    if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
        return [forbidden_change("spec.selector", "field is immutable")]
    return []


def default_cron_job(cron_job: Obj) -> None:
    spec = cron_job.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
    _default_job_spec(job_spec)
    cron_job["status"] = {}


def _check_schedule(schedule: str) -> list[Cause]:
    """Five cron fields or one of the ``@`` macros (the parser the API server uses)."""
    if not schedule:
        return [required("spec.schedule")]
    text = re.sub(r"^(CRON_)?TZ=\S+\s+", "", schedule.strip())
    fields = text.split()
    if text in _CRON_MACROS or (len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)):
        return []
    return [invalid_value("spec.schedule", schedule, "unparseable schedule")]


def validate_cron_job(cron_job: Obj) -> list[Cause]:
    spec = cron_job.get("spec") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return _check_schedule(str(spec.get("schedule") or "")) + _check_job_template(
        job_spec, "spec.jobTemplate.spec"
    )
