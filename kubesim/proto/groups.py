"""Message tables for the named API groups kubectl's typed commands write.

Field numbers from the published ``generated.proto`` files of ``k8s.io/api``: ``apps/v1``
(Deployment), ``batch/v1`` (Job, CronJob), ``rbac/v1`` (Role, ClusterRole, RoleBinding,
ClusterRoleBinding), ``scheduling/v1`` (PriorityClass), ``coordination/v1`` (Lease),
``authorization/v1`` (SelfSubjectAccessReview) and ``authentication/v1`` (TokenRequest).
"""

from __future__ import annotations

from .fields import (
    Field,
    Kind,
    Message,
    flag,
    metadata,
    nested,
    nested_list,
    number,
    text,
    texts,
)

APPS: dict[str, Message] = {
    "Deployment": {1: metadata(), 2: nested("spec", "DeploymentSpec")},
    "DeploymentSpec": {
        1: number("replicas", keep=True),
        2: nested("selector", "LabelSelector", keep=True),
        3: nested("template", "PodTemplateSpec"),
        4: nested("strategy", "DeploymentStrategy"),
        5: number("minReadySeconds"),
        6: number("revisionHistoryLimit", keep=True),
        7: flag("paused"),
        9: number("progressDeadlineSeconds", keep=True),
    },
    "DeploymentStrategy": {
        1: text("type"),
        2: nested("rollingUpdate", "RollingUpdateDeployment", keep=True),
    },
    "RollingUpdateDeployment": {
        1: Field("maxUnavailable", Kind.INT_OR_STRING, keep=True),
        2: Field("maxSurge", Kind.INT_OR_STRING, keep=True),
    },
}

BATCH: dict[str, Message] = {
    "Job": {1: metadata(), 2: nested("spec", "JobSpec")},
    "JobSpec": {
        1: number("parallelism", keep=True),
        2: number("completions", keep=True),
        3: number("activeDeadlineSeconds", keep=True),
        7: number("backoffLimit", keep=True),
        4: nested("selector", "LabelSelector", keep=True),
        5: flag("manualSelector", keep=True),
        6: nested("template", "PodTemplateSpec"),
        8: number("ttlSecondsAfterFinished", keep=True),
        9: text("completionMode"),
        10: flag("suspend", keep=True),
    },
    "CronJob": {1: metadata(), 2: nested("spec", "CronJobSpec")},
    "CronJobSpec": {
        1: text("schedule"),
        8: text("timeZone"),
        2: number("startingDeadlineSeconds", keep=True),
        3: text("concurrencyPolicy"),
        4: flag("suspend", keep=True),
        5: nested("jobTemplate", "JobTemplateSpec"),
        6: number("successfulJobsHistoryLimit", keep=True),
        7: number("failedJobsHistoryLimit", keep=True),
    },
    "JobTemplateSpec": {1: metadata(), 2: nested("spec", "JobSpec")},
}

RBAC: dict[str, Message] = {
    "Role": {1: metadata(), 2: nested_list("rules", "PolicyRule")},
    "ClusterRole": {
        1: metadata(),
        2: nested_list("rules", "PolicyRule"),
        3: nested("aggregationRule", "AggregationRule", keep=True),
    },
    "AggregationRule": {1: nested_list("clusterRoleSelectors", "LabelSelector")},
    "PolicyRule": {
        1: texts("verbs"),
        2: texts("apiGroups"),
        3: texts("resources"),
        4: texts("resourceNames"),
        5: texts("nonResourceURLs"),
    },
    "RoleBinding": {
        1: metadata(),
        2: nested_list("subjects", "Subject"),
        3: nested("roleRef", "RoleRef"),
    },
    "Subject": {1: text("kind"), 2: text("apiGroup"), 3: text("name"), 4: text("namespace")},
    "RoleRef": {1: text("apiGroup"), 2: text("kind"), 3: text("name")},
}

OTHERS: dict[str, Message] = {
    "PriorityClass": {
        1: metadata(),
        2: number("value", keep=True),
        3: flag("globalDefault"),
        4: text("description"),
        5: text("preemptionPolicy"),
    },
    "Lease": {1: metadata(), 2: nested("spec", "LeaseSpec")},
    "LeaseSpec": {
        1: text("holderIdentity", keep=True),
        2: number("leaseDurationSeconds", keep=True),
        3: Field("acquireTime", Kind.MICRO_TIME),
        4: Field("renewTime", Kind.MICRO_TIME),
        5: number("leaseTransitions", keep=True),
    },
    "SelfSubjectAccessReview": {
        1: metadata(),
        2: nested("spec", "SelfSubjectAccessReviewSpec"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: nested("resourceAttributes", "ResourceAttributes", keep=True),
        2: nested("nonResourceAttributes", "NonResourceAttributes", keep=True),
    },
    "ResourceAttributes": {
        1: text("namespace"),
        2: text("verb"),
        3: text("group"),
        4: text("version"),
        5: text("resource"),
        6: text("subresource"),
        7: text("name"),
    },
    "NonResourceAttributes": {1: text("path"), 2: text("verb")},
    "TokenRequest": {1: metadata(), 2: nested("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {
        1: texts("audiences"),
        4: number("expirationSeconds", keep=True),
        3: nested("boundObjectRef", "BoundObjectReference", keep=True),
    },
    "BoundObjectReference": {
        1: text("kind"),
        2: text("apiVersion"),
        3: text("name"),
        4: text("uid"),
    },
}
