"""Configuration: sources and their precedence, validation messages, the config and help verbs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raworc_spawner.app import RaworcApp
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.cli import main
from raworc_spawner.errors import InvalidConfig


def make_app(tmp_path: Path, *argv: str) -> RaworcApp:
    app = RaworcApp()
    app.initialize([f"--data-dir={tmp_path}", f"--RaworcApp.env_file={tmp_path / '.env'}", *argv])
    return app


def test_defaults_are_the_seeds(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    k8s = KubernetesSettings(parent=app)
    assert (app.ip, app.port, app.kubernetes_enabled) == ("127.0.0.1", 9000, False)
    assert k8s.namespace == "raworc-sessions" and k8s.image == "python:3.11-slim"
    assert k8s.image_pull_policy == "IfNotPresent"
    assert k8s.resources() == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1000m", "memory": "1Gi"},
    }
    assert (k8s.storage_size, k8s.storage_class) == ("1Gi", "")


def test_environment_and_dotenv_set_the_seeds_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("KUBERNETES_IMAGE=from-dotenv:1\nKUBERNETES_CPU_LIMIT=2\n")
    monkeypatch.setenv("KUBERNETES_IMAGE", "from-env:2")
    monkeypatch.setenv("KUBERNETES_ENABLED", "true")
    monkeypatch.setenv("RAWORC_PORT", "9100")
    app = make_app(tmp_path)
    k8s = KubernetesSettings(parent=app)
    assert k8s.image == "from-env:2"  # the real environment beats .env
    assert k8s.cpu_limit == "2"
    assert app.kubernetes_enabled is True and app.port == 9100


def test_config_file_beats_environment_and_flags_beat_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAWORC_PORT", "9100")
    monkeypatch.setenv("KUBERNETES_NAMESPACE", "from-env")
    config = tmp_path / "raworc_config.py"
    config.write_text("c.RaworcApp.port = 9200\nc.KubernetesSettings.namespace = 'from-file'\n")
    app = make_app(tmp_path, f"--config={config}", "--port=9300")
    assert app.port == 9300
    assert KubernetesSettings(parent=app).namespace == "from-file"
    sources = {f"{c}.{n}": s for c, n, _, s in app.setting_sources()}
    assert sources["RaworcApp.port"] == "command line"
    assert sources["KubernetesSettings.namespace"].startswith("config file")
    assert sources["KubernetesSettings.image"] == "default"


def test_flags_beat_the_environment_without_a_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAWORC_INSTANCE_NAME", "from-env")
    monkeypatch.setenv("KUBERNETES_ENABLED", "true")
    monkeypatch.setenv("RAWORC_PORT", "9100")
    app = make_app(tmp_path, "--RaworcApp.instance_name=from-flag", "--local", "--port=9300")
    assert (app.instance_name, app.kubernetes_enabled, app.port) == ("from-flag", False, 9300)
    sources = {f"{c}.{n}": s for c, n, _, s in app.setting_sources()}
    assert sources["RaworcApp.instance_name"] == "command line"
    assert sources["RaworcApp.kubernetes_enabled"] == "command line"


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("KUBERNETES_CPU_REQUEST", "lots", "KubernetesSettings.cpu_request='lots'"),
        ("KUBERNETES_MEMORY_LIMIT", "1GB", "KubernetesSettings.memory_limit='1GB'"),
        ("KUBERNETES_STORAGE_SIZE", "", "KubernetesSettings.storage_size=''"),
        ("KUBERNETES_IMAGE_PULL_POLICY", "Sometimes", "KUBERNETES_IMAGE_PULL_POLICY='Sometimes'"),
        ("KUBERNETES_NAMESPACE", "Raworc_Sessions", "KubernetesSettings.namespace"),
        ("KUBERNETES_ENABLED", "perhaps", "KUBERNETES_ENABLED='perhaps'"),
        ("RAWORC_PORT", "70000", "RaworcApp.port=70000"),
        ("RAWORC_PORT", "nine", "RAWORC_PORT='nine'"),
        ("RAWORC_LOG", "debug,raworc=loud", "RaworcApp.log_spec"),
    ],
)
def test_invalid_values_fail_naming_the_setting_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidConfig) as caught:
        make_app(tmp_path)
    assert expected in str(caught.value)


def test_a_request_above_its_limit_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_MEMORY_REQUEST", "2Gi")
    with pytest.raises(InvalidConfig, match=r"must not exceed KubernetesSettings\.memory_limit"):
        make_app(tmp_path)


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="an existing file"):
        make_app(tmp_path, f"--config={tmp_path / 'nope.py'}")


def test_api_tokens_of_the_wrong_shape_are_rejected(tmp_path: Path) -> None:
    config = tmp_path / "c.py"
    config.write_text("c.RaworcApp.api_tokens = {'t1': {'name': 'alice'}}\n")
    with pytest.raises(InvalidConfig, match=r"RaworcApp\.api_tokens"):
        make_app(tmp_path, f"--config={config}")


def test_the_admin_token_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    token = app.ensure_admin_token()
    assert token == make_app(tmp_path).ensure_admin_token()
    assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600


def test_config_verb_prints_values_and_sources_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBERNETES_IMAGE", "custom:1")
    assert main(["config", "--json", f"--data-dir={tmp_path}", "--RaworcApp.env_file="]) == 0
    rows = {row["setting"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["KubernetesSettings.image"] == {
        "setting": "KubernetesSettings.image",
        "value": "custom:1",
        "source": "env KUBERNETES_IMAGE",
    }
    assert rows["RaworcApp.data_dir"]["source"] == "command line"


def test_bad_configuration_exits_2_with_a_one_line_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raworc_spawner.cli", "config", f"--data-dir={tmp_path}"],
        env={"KUBERNETES_CPU_REQUEST": "lots", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: KubernetesSettings.cpu_request='lots' is invalid" in result.stderr
    assert "(from env KUBERNETES_CPU_REQUEST)" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_all_lists_every_setting_with_its_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raworc_spawner.cli", "serve", "--help-all"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    settings = ("--KubernetesSettings.cpu_request", "--RaworcApp.port", "--LocalBackend.command")
    for setting in settings:
        assert setting in result.stdout
    assert "KUBERNETES_CPU_REQUEST" in result.stdout


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (
            "--SessionManager.max_sessions_per_user=abc",
            "SessionManager.max_sessions_per_user='abc' is invalid: expected an int, not the str "
            "'abc'.",
        ),
        (
            "--SessionManager.lost_compute_policy=bogus",
            "SessionManager.lost_compute_policy='bogus' is invalid: expected any of ['idle', "
            "'restart'], not the str 'bogus'.",
        ),
        (
            "--SessionManager.activity_flush_seconds=0",
            "SessionManager.activity_flush_seconds=0.0 is invalid: should not be less than 0.01, "
            "but a value of 0.0 was specified",
        ),
        (
            "--SessionManager.max_sessions_per_user=-5",
            "SessionManager.max_sessions_per_user=-5 is invalid: should not be less than 0, but a "
            "value of -5 was specified",
        ),
    ],
)
def test_a_setting_of_the_wrong_type_or_range_is_one_line_naming_it(
    tmp_path: Path, flag: str, expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raworc_spawner.cli", "config", f"--data-dir={tmp_path}", flag],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"raworc-spawner: configuration error: {expected}"
