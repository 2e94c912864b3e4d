"""Session manifests rendered from Jinja2 templates: PVC, pod and the isolation NetworkPolicy.

Templates live in ``raworc_spawner/templates/k8s``; a file of the same name in
``KubernetesSettings.template_dir`` replaces the packaged one. Rendering is strict (an undefined
variable is an error), every value enters the YAML through the ``tojson`` filter so no text can
add structure, and the result must be a mapping with the expected ``apiVersion`` and ``kind``.

What a session brings (its name, prompt and env, a hub's command) is escaped for the kubelet's
``$(VAR)`` expansion (:func:`kubelet_literal`), so the container sees exactly what was sent;
what the operator configured is not (it may mean ``$(VAR)``). The rendered pod carries the hash
of its spec (:data:`SPEC_HASH_ANNOTATION`), so a pod rendered from settings since changed is
recognised and replaced on the next start.

>>> from raworc_spawner.backends.base import SessionSpec
>>> from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
>>> renderer = ManifestRenderer(KubernetesSettings())
>>> pod = renderer.render_pod(SessionSpec(session_id="abc", name="demo", owner="ann"))
>>> pod["metadata"]["name"], pod["spec"]["containers"][0]["workingDir"]
('session-abc', '/workspace')
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import jinja2
import yaml

from raworc_spawner.backends.base import Profile, SessionSpec
from raworc_spawner.backends.kubernetes import naming
from raworc_spawner.backends.kubernetes.profiles import deep_merge, resources_block
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.errors import InvalidConfig, RaworcError

__all__ = [
    "SPEC_HASH_ANNOTATION",
    "ManifestError",
    "ManifestRenderer",
    "deep_merge",
    "kubelet_literal",
    "pod_spec_hash",
    "to_yaml_json",
]

#: libyaml's safe loader when available (same objects, several times faster).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

POD_TEMPLATE = "pod.yaml.j2"
PVC_TEMPLATE = "pvc.yaml.j2"
NETWORK_POLICY_TEMPLATE = "networkpolicy.yaml.j2"
_EXPECTED = {
    POD_TEMPLATE: ("v1", "Pod"),
    PVC_TEMPLATE: ("v1", "PersistentVolumeClaim"),
    NETWORK_POLICY_TEMPLATE: ("networking.k8s.io/v1", "NetworkPolicy"),
}
# Characters JSON leaves raw but YAML would reject or read as line breaks.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
#: Annotation of a session pod: the hash of the pod spec it was rendered with.
SPEC_HASH_ANNOTATION = naming.SPEC_HASH_ANNOTATION


class ManifestError(InvalidConfig):
    """A manifest template is missing, broken, or renders something that is not the object."""

    code = "manifest_error"

    def __init__(self, template: str, problem: str) -> None:
        RaworcError.__init__(self, f"manifest template {template}: {problem}")
        self.setting = "KubernetesSettings.template_dir"
        self.value = template
        self.template = template
        self.problem = problem


def kubelet_literal(text: str) -> str:
    """``text`` escaped so the kubelet's expansion gives it back unchanged: ``$`` → ``$$``.

    The kubelet expands ``$(VAR)`` and turns ``$$`` into ``$`` in ``env[].value``,
    ``command`` and ``args`` (Kubernetes ``third_party/forked/golang/expansion``, used by
    ``makeEnvironmentVariables`` and ``ExpandContainerCommandAndArgs``); doubling every ``$``
    makes each one literal.

    >>> kubelet_literal("Budget: $$5; echo $(SESSION_ID)")
    'Budget: $$$$5; echo $$(SESSION_ID)'
    """
    return text.replace("$", "$$")


def pod_spec_hash(spec: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of a pod spec as rendered (canonical JSON)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def to_yaml_json(value: Any) -> str:
    """``value`` as JSON that YAML reads back unchanged: the template's only way to emit data."""
    text = json.dumps(value, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class ManifestRenderer:
    """Render a session's manifests from :class:`KubernetesSettings`.

    The settings checked themselves when they were constructed; construction here renders every
    template once with a sample session, so a broken template fails at start-up. Each
    ``render_*`` returns a new dict ready for the API; ``render_pod`` and ``render_pvc``
    validate the spec first and raise :class:`~raworc_spawner.errors.ValidationError` for a
    bad one.
    """

    def __init__(self, settings: KubernetesSettings, *, instance_name: str = "raworc") -> None:
        self.settings = settings
        #: The owner instance every rendered session object names (label and annotation).
        self.instance_name = instance_name
        self.environment = _environment(settings.template_dir)
        self.check_templates()

    # -- public -----------------------------------------------------------------------------------

    def render_pvc(self, spec: SessionSpec) -> dict[str, Any]:
        """The workspace PersistentVolumeClaim ``session-pvc-{id}``."""
        values = self.settings.effective(spec)
        clone_from = naming.pvc_name(spec.clone_from) if spec.clone_from else ""
        context = {
            **self._common(spec),
            "storage_size": values["storage_size"],
            "storage_class": values["storage_class"],
            "clone_from_pvc": clone_from,
        }
        return self._render(PVC_TEMPLATE, context)

    def render_pod(self, spec: SessionSpec) -> dict[str, Any]:
        """The session pod ``session-{id}``, with extra pod/container config merged in.

        Its ``raworc.dev/spec-hash`` annotation is the hash of the finished spec.
        """
        values = self.settings.effective(spec)
        pod = self._render(POD_TEMPLATE, {**self._common(spec), **self._pod_values(spec, values)})
        pod = self._merge_extra(pod, values)
        annotations = pod["metadata"].get("annotations") or {}
        pod["metadata"]["annotations"] = {
            **annotations,
            SPEC_HASH_ANNOTATION: pod_spec_hash(pod["spec"]),
        }
        return pod

    def render_network_policy(self) -> dict[str, Any]:
        """The NetworkPolicy ``session-pods-isolation`` that fences every session pod."""
        s = self.settings
        context = {
            "settings": s,
            "name": naming.NETWORK_POLICY_NAME,
            "namespace": s.namespace,
            "labels": {naming.APP_LABEL: naming.APP, "app.kubernetes.io/managed-by": "raworc"},
            "server_pod_labels": dict(s.server_pod_labels),
            "server_namespace": s.server_namespace,
            "allow_same_namespace": s.network_policy_allow_same_namespace,
            "egress_cidrs": list(s.network_policy_egress_cidrs),
        }
        return self._render(NETWORK_POLICY_TEMPLATE, context)

    def render_all(self, spec: SessionSpec) -> list[dict[str, Any]]:
        """Everything a session gets: PVC, pod, and the NetworkPolicy when it is enabled."""
        manifests = [self.render_pvc(spec), self.render_pod(spec)]
        if self.settings.create_network_policy:
            manifests.append(self.render_network_policy())
        return manifests

    def profile_catalog(self) -> dict[str, Profile]:
        """Profile name → description and effective values (see KubernetesSettings)."""
        return self.settings.profile_catalog()

    def validate_spec(self, spec: SessionSpec) -> None:
        """Raise ValidationError naming the field if ``spec`` cannot be rendered."""
        self.settings.validate_spec(spec)

    def check_templates(self) -> None:
        """Render every template once with a sample session; raise ManifestError if one fails."""
        sample = SessionSpec(
            session_id="00000000-0000-0000-0000-000000000000", name="check", owner=""
        )
        self.render_pvc(sample)
        self.render_pod(sample)
        self.render_network_policy()

    def pod_security_context(self) -> dict[str, Any]:
        """The pod ``securityContext``: the configured dict, or one built from the settings."""
        s = self.settings
        if s.pod_security_context:
            return dict(s.pod_security_context)
        context: dict[str, Any] = {"runAsNonRoot": s.run_as_non_root}
        for key, value in (("runAsUser", s.run_as_user), ("runAsGroup", s.run_as_group)):
            if value is not None:
                context[key] = value
        if s.fs_group is not None:
            context.update(fsGroup=s.fs_group, fsGroupChangePolicy="OnRootMismatch")
        context["seccompProfile"] = {"type": "RuntimeDefault"}
        return context

    def container_security_context(self) -> dict[str, Any]:
        """Every container's ``securityContext``: the configured dict, or the secure default."""
        s = self.settings
        if s.container_security_context:
            return dict(s.container_security_context)
        return {
            "allowPrivilegeEscalation": s.allow_privilege_escalation,
            "readOnlyRootFilesystem": s.read_only_root_filesystem,
            "capabilities": {"drop": ["ALL"]},
        }

    # -- building the template context ------------------------------------------------------------

    def _common(self, spec: SessionSpec) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "spec": spec,
            "namespace": self.settings.namespace,
            "pod_name": naming.pod_name(spec.session_id),
            "pvc_name": naming.pvc_name(spec.session_id),
            "labels": self._labels(spec),
            "annotations": self._annotations(spec),
        }

    def _labels(self, spec: SessionSpec) -> dict[str, str]:
        return {
            **naming.session_labels(spec.session_id, spec.name),
            naming.INSTANCE_LABEL: self.instance_name,
            **self.settings.extra_labels,  # never a reserved label (KubernetesSettings checks)
        }

    def _annotations(self, spec: SessionSpec) -> dict[str, str]:
        """What it takes to rebuild the session's record, with the owner instance."""
        annotations = {
            naming.SESSION_NAME_ANNOTATION: spec.name,
            naming.OWNER_ANNOTATION: spec.owner,
            naming.NAMESPACE_ANNOTATION: spec.namespace,
            naming.INSTANCE_ANNOTATION: self.instance_name,
            **self.settings.extra_annotations,  # never under raworc.dev/ (checked)
        }
        if spec.created_at is not None:
            annotations[naming.CREATED_AT_ANNOTATION] = naming.annotation_time(spec.created_at)
        profile = self.settings.profile_name(spec)
        if profile:
            annotations[naming.PROFILE_ANNOTATION] = profile
        if spec.clone_from:
            annotations[naming.CLONED_FROM_ANNOTATION] = spec.clone_from
        if spec.waiting_timeout_seconds is not None:
            annotations[naming.WAITING_TIMEOUT_ANNOTATION] = str(spec.waiting_timeout_seconds)
        if spec.hub_server is not None:
            annotations[naming.HUB_USER_ANNOTATION] = spec.hub_server.user
            annotations[naming.HUB_SERVER_ANNOTATION] = spec.hub_server.name
        return annotations

    def _pod_values(self, spec: SessionSpec, values: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        container_sc = self.container_security_context()
        return {
            "profile": values,
            "image": values["image"],
            "image_pull_policy": values["image_pull_policy"],
            "command": _command(spec, s.command),
            "env": _env_list(values["env"], spec.session_env()),
            "port": spec.port,
            "resources": resources_block(values, gpu_resource_name=s.gpu_resource_name),
            "pod_security_context": self.pod_security_context(),
            "container_security_context": container_sc,
            "restart_policy": s.restart_policy,
            "termination_grace_period_seconds": s.termination_grace_period_seconds,
            "automount_service_account_token": s.automount_service_account_token,
            "service_account_name": s.service_account_name,
            "priority_class_name": values["priority_class_name"],
            "node_selector": values["node_selector"],
            "tolerations": values["tolerations"],
            "affinity": values["affinity"],
            "image_pull_secrets": [{"name": name} for name in s.image_pull_secrets],
            "init_containers": [_secured(c, container_sc) for c in s.init_containers],
            "sidecar_containers": [_secured(c, container_sc) for c in s.sidecar_containers],
            "extra_volumes": list(s.extra_volumes),
            "extra_volume_mounts": list(s.extra_volume_mounts),
            "tmp_volume": {"sizeLimit": s.tmp_size_limit} if s.tmp_size_limit else {},
        }

    def _merge_extra(self, pod: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        pod["spec"] = deep_merge(pod["spec"], values["extra_pod_config"])
        containers = pod["spec"].get("containers") or []
        for i, container in enumerate(containers):
            if isinstance(container, dict) and container.get("name") == naming.MAIN_CONTAINER:
                containers[i] = deep_merge(container, values["extra_container_config"])
                return pod
        raise ManifestError(
            self._filename(POD_TEMPLATE), f"has no container named {naming.MAIN_CONTAINER!r}"
        )

    # -- rendering --------------------------------------------------------------------------------

    def _render(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        template = self._template(name)
        filename = template.filename or name
        try:
            text = template.render(**context)
        except jinja2.TemplateError as e:
            raise ManifestError(filename, f"cannot render: {e}") from e
        try:
            obj = yaml.load(text, Loader=_SAFE_LOADER)
        except yaml.YAMLError as e:
            raise ManifestError(filename, f"does not render valid YAML: {e}") from e
        _check_object(filename, obj, _EXPECTED[name])
        return obj

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.environment.get_template(name)
        except jinja2.TemplateSyntaxError as e:
            raise ManifestError(
                e.filename or name, f"syntax error on line {e.lineno}: {e.message}"
            ) from e
        except jinja2.TemplateError as e:
            raise ManifestError(name, f"cannot be loaded: {e}") from e

    def _filename(self, name: str) -> str:
        return self._template(name).filename or name


def _environment(template_dir: str) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("raworc_spawner", "templates/k8s")]
    if template_dir:
        loaders.insert(0, jinja2.FileSystemLoader(template_dir))
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    environment.filters["tojson"] = to_yaml_json
    return environment


def _check_object(filename: str, obj: object, expected: tuple[str, str]) -> None:
    if not isinstance(obj, dict):
        raise ManifestError(filename, f"renders {type(obj).__name__}, not a mapping")
    for key in ("apiVersion", "kind"):
        if not obj.get(key):
            raise ManifestError(filename, f"renders no {key}")
    if (obj["apiVersion"], obj["kind"]) != expected:
        got = f"{obj['apiVersion']} {obj['kind']}"
        raise ManifestError(filename, f"renders {got}, expected {expected[0]} {expected[1]}")


def _command(spec: SessionSpec, configured: list[str]) -> list[str]:
    """The session's own command (escaped: it is sent as data), else the operator's (as is)."""
    if spec.command is None:
        return list(configured)
    return [kubelet_literal(str(part)) for part in spec.command]


def _env_list(configured: dict[str, Any], session: dict[str, str]) -> list[dict[str, Any]]:
    """Session variables first (they win), then configured ones not shadowed by them.

    The session's values are escaped for the kubelet; configured ones (settings, profiles) are
    the operator's and may refer to other variables with ``$(NAME)``, so they are left as is.
    """
    env: list[dict[str, Any]] = [
        {"name": k, "value": kubelet_literal(str(v))} for k, v in session.items()
    ]
    for name, value in configured.items():
        if name in session:
            continue
        if isinstance(value, dict):
            env.append({"name": name, "valueFrom": value})
        else:
            env.append({"name": name, "value": value})
    return env


def _secured(container: dict[str, Any], security_context: dict[str, Any]) -> dict[str, Any]:
    """A container with the default security context under its own settings."""
    own = container.get("securityContext") or {}
    return {**container, "securityContext": deep_merge(security_context, own)}
