"""The chart's trust boundaries, rendered by a real helm: the pipeline token and API key
reach exactly the services that send or check them, and the services start with what the
chart gives them; the checksum annotation rolls the right pods and reveals nothing; the
NetworkPolicies allow the pipeline's hops and nothing else (checked against the
NetworkPolicy API's semantics in tests/packaging/netpol.py); the rollout tool's Role is
as small as the chart's kinds allow; slots pin a model version unless told otherwise.

What only a cluster shows (tokens kept across upgrades, the Role working for a real
`helm upgrade`) is in tests/packaging/test_chart_security_on_apiserver.py.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from agogosml.envelope import Event
from agogosml.modelloop.http import RetrainServerSettings
from agogosml.privacy.keyfile import new_keyring_text
from agogosml.privacy.keys import Keyring
from agogosml.privacy.settings import GdprSettings
from agogosml.services.app.settings import AppSettings
from agogosml.services.input_reader.privacy import privacy_from_settings
from agogosml.services.input_reader.settings import ReaderSettings
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.output_writer.settings import WriterSettings
from tests.packaging import netpol
from tests.packaging.helm import (
    CHART,
    MATRIX,
    NAMESPACE,
    RELEASE,
    Helm,
    Manifest,
    Rendered,
    env_of,
    env_values,
    name_of,
    only_container,
    pod_spec,
)

pytestmark = pytest.mark.timeout(1_200)

FULLNAME = RELEASE
APP = f"{FULLNAME}-app"
FIXED = {
    "auth.pipelineToken": "TESTSECRET-pipeline-token-one",
    "auth.apiKey.value": "TESTSECRET-api-key-number-one",
    "auth.monitorApiToken": "TESTSECRET-monitor-token-one",
    "auth.retrainToken": "TESTSECRET-retrain-token-one",
    "secretChecksumSalt": "TESTSECRET-checksum-salt",
}
# What the owner of an existing Secret would put there (the keys values.yaml names).
EXISTING_SECRETS = {
    "agogosml-auth": {"pipeline-token": "x" * 24 + "-pipeline",
                      "api-key": "y" * 24 + "-api-key",
                      "monitor-api-token": "z" * 24 + "-monitor"},
    "kafka-credentials": {"password": "p"},
    "eventhubs-credentials": {
        "eventhubs-connection-string": "Endpoint=sb://agogosml-test.servicebus.windows.net/;"
                                       "SharedAccessKeyName=pipeline;SharedAccessKey=k",
        "eventhubs-checkpoint-blob-connection-string":
            "DefaultEndpointsProtocol=https;AccountName=agogosmltest;AccountKey=k;"
            "EndpointSuffix=core.windows.net"},
    "agogosml-monitor-store": {"url": "postgresql://monitor:pw@db.example/events"},
    "agogosml-privacy-keyring": {"keyring.yaml": new_keyring_text()},
    "agogosml-privacy-kek": {"kek.yaml": new_keyring_text()},
}
SETTINGS: dict[str, type[BaseSettings]] = {
    "AGOGOSML_READER_": ReaderSettings, "AGOGOSML_APP_": AppSettings,
    "AGOGOSML_WRITER_": WriterSettings, "AGOGOSML_MONITOR_": MonitorSettings,
    "AGOGOSML_RETRAIN_": RetrainServerSettings}
PIPELINE = ("input-reader", "app", "output-writer", "output-writer-shadow")
"""The components that carry the pipeline token (the monitor and retrain server do not)."""
COMPONENT = "app.kubernetes.io/component"
TEST_TAG = "0.1.0-3f2a9c1"


def fails(helm: Helm, *values: str, sets: dict[str, str] | None = None,
          set_strings: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> str:
    done = helm.template_run(list(values), sets=sets, set_strings=set_strings, extra=extra)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    return done.stderr


def component_of(workload: Manifest) -> str:
    component: str = workload["metadata"]["labels"][COMPONENT]
    return component


def by_component(chart: Rendered) -> dict[str, list[Manifest]]:
    found: dict[str, list[Manifest]] = {}
    for item in chart.workloads():
        found.setdefault(component_of(item), []).append(item)
    return found


def chart_secret(chart: Rendered) -> dict[str, str]:
    """The chart Secret's data, decoded; empty without one."""
    secret = chart.find("Secret", FULLNAME)
    if secret is None:
        return {}
    return decoded(secret)


def decoded(secret: Manifest) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def rendered_secrets(chart: Rendered) -> dict[str, dict[str, str]]:
    """Every Secret the chart renders (its own, the generated privacy keyrings), decoded."""
    return {name_of(secret): decoded(secret) for secret in chart.of_kind("Secret")}


def mounted_files(chart: Rendered, workload: Manifest,
                  secrets: Mapping[str, Mapping[str, str]], folder: Path) -> dict[str, Path]:
    """The files the workload's ConfigMap and Secret volumes put into its container,
    written under `folder`: path in the container -> the file written here."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    files: dict[str, Path] = {}
    for mount in only_container(workload)["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            source = volume["configMap"]
            data = chart.get("ConfigMap", source["name"])["data"]
        elif "secret" in volume:
            source = volume["secret"]
            data = secrets[source["secretName"]]
        else:
            continue
        for item in source.get("items") or [{"key": key, "path": key} for key in data]:
            local = folder / name_of(workload) / mount["name"] / item["path"]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(data[item["key"]])
            files[f"{mount['mountPath']}/{item['path']}"] = local
    return files


def container_env(chart: Rendered, workload: Manifest,
                  secrets: Mapping[str, Mapping[str, str]], folder: Path) -> dict[str, str]:
    """resolved_env, with the paths of mounted files pointing at copies under `folder`."""
    files = mounted_files(chart, workload, secrets, folder)
    return {name: str(files.get(value, value))
            for name, value in resolved_env(only_container(workload), secrets).items()}


def resolved_env(container: Manifest, secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The environment the kubelet would give the container: values as they are, Secret
    keys looked up; a missing optional key leaves its variable out, a missing required
    one would keep the container from starting."""
    env: dict[str, str] = {}
    for name, entry in env_of(container).items():
        if "value" in entry:
            env[name] = str(entry["value"])
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        data = secrets.get(ref["name"], {})
        if ref["key"] in data:
            env[name] = data[ref["key"]]
        else:
            assert ref.get("optional") is True, (
                f"{container['name']}: {name} needs key {ref['key']} of Secret {ref['name']}")
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No AGOGOSML_ variable of the test run's own leaks into the settings."""
    for name in list(os.environ):
        if name.startswith("AGOGOSML_"):
            monkeypatch.delenv(name)
    return monkeypatch


def start(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Any:
    """The service's settings built from `env`, as the service builds them at start
    (ReaderSettings, AppSettings or WriterSettings, by the variables' prefix)."""
    (prefix,) = {p for p in SETTINGS for name in env if name.startswith(p)}
    with monkeypatch.context() as scoped:
        for name, value in env.items():
            scoped.setenv(name, value)
        return SETTINGS[prefix]()


def secret_value(value: Any) -> str | None:
    if value is None:
        return None
    text: str = value.get_secret_value()
    return text


def privacy_on(chart: Rendered) -> bool:
    return chart.find("ConfigMap", f"{FULLNAME}-privacy-policy") is not None


def start_gdpr(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> GdprSettings:
    with monkeypatch.context() as scoped:
        for name, value in env.items():
            scoped.setenv(name, value)
        return GdprSettings()


def reader_privacy_works(settings: Any, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    """The reader's privacy stage, built as the reader builds it at start-up, pseudonymizes
    the subject. A privacy store's database is not here: the same KEK wraps subject keys
    in SQLite instead."""
    if settings.privacy_policy_path is None:
        return
    if settings.subject_keys_url is not None:
        settings = settings.model_copy(update={
            "subject_keys_url": SecretStr(f"sqlite:///{tmp_path / 'subject-keys.db'}")})
    privacy = privacy_from_settings(settings)
    assert privacy is not None
    try:
        assert (privacy.subject_keys is not None) is (settings.subject_keys_url is not None)
        event = Event(id="e-1", time_ms=0, subject="c-42",
                      payload={"customer_id": "c-42", "amount": 12.5})
        protected = privacy.stage(event)
        assert protected.payload["amount"] == 12.5
        if settings.subject_field is not None:
            assert protected.subject is not None
            assert "c-42" not in str(protected.to_json())
    finally:
        if privacy.subject_keys is not None:
            privacy.subject_keys.close()


def monitor_gdpr_works(gdpr: GdprSettings, env: Mapping[str, str]) -> None:
    """The monitor's GDPR settings: its keyring and KEK load, the tracking URI is the
    monitor's own."""
    assert gdpr.keyring_path is not None
    assert gdpr.kek_path is not None
    assert Keyring.from_file(gdpr.keyring_path).has_pseudonym_key
    assert Keyring.from_file(gdpr.kek_path).current_key_id is not None
    assert gdpr.tracking_uri == env["AGOGOSML_MONITOR_TRACKING_URI"]


# --- auth: who gets which token --------------------------------------------------------


AUTH_ENV = {
    "input-reader": {"AGOGOSML_READER_PIPELINE_TOKEN": ("pipeline-token", False)},
    "app": {"AGOGOSML_APP_PIPELINE_TOKEN": ("pipeline-token", False),
            "AGOGOSML_APP_PIPELINE_TOKEN_SECONDARY": ("pipeline-token-secondary", True),
            "AGOGOSML_APP_API_KEY": ("api-key", False),
            "AGOGOSML_APP_API_KEY_SECONDARY": ("api-key-secondary", True)},
    "output-writer": {"AGOGOSML_WRITER_PIPELINE_TOKEN": ("pipeline-token", False),
                      "AGOGOSML_WRITER_PIPELINE_TOKEN_SECONDARY":
                          ("pipeline-token-secondary", True)},
}
AUTH_ENV["output-writer-shadow"] = AUTH_ENV["output-writer"]
AUTH_ENV["monitor"] = {
    "AGOGOSML_MONITOR_API_TOKEN": ("monitor-api-token", False),
    "AGOGOSML_MONITOR_API_TOKEN_SECONDARY": ("monitor-api-token-secondary", True)}
AUTH_ENV["retrain-server"] = {
    "AGOGOSML_RETRAIN_TOKEN": ("retrain-token", False),
    "AGOGOSML_RETRAIN_TOKEN_SECONDARY": ("retrain-token-secondary", True)}
MONITOR_SENDS_RETRAIN = {"AGOGOSML_MONITOR_RETRAIN_TOKEN": ("retrain-token", False)}


def auth_env(container: Manifest) -> dict[str, Manifest]:
    return {name: entry for name, entry in env_of(container).items()
            if "_TOKEN" in name or "_API_KEY" in name}


@pytest.mark.parametrize(("values", "secret"), [
    ("shadow", FULLNAME), ("green-live", FULLNAME), ("existing-secret", "agogosml-auth"),
    ("retraining", FULLNAME)])
def test_every_service_reads_its_tokens_from_the_auth_secret(
        rendered: dict[str, Rendered], values: str, secret: str) -> None:
    """The reader sends the pipeline token; every app slot and writer (shadow too) checks
    it and its secondary; the app alone has the API keys; the monitor checks its API token
    and, with the retrain server on, sends the retrain token the server checks. Never as
    plain values."""
    chart = rendered[values]
    server = chart.find("Deployment", f"{FULLNAME}-retrain-server") is not None
    seen = set()
    for component, workloads in by_component(chart).items():
        if component == "test":
            continue
        for workload in workloads:
            expected = AUTH_ENV[component]
            if component == "monitor" and server:
                expected = {**expected, **MONITOR_SENDS_RETRAIN}
            entries = auth_env(only_container(workload))
            assert set(entries) == set(expected), name_of(workload)
            for name, (key, optional) in expected.items():
                ref = entries[name]["valueFrom"]["secretKeyRef"]
                assert "value" not in entries[name]
                assert (ref["name"], ref["key"]) == (secret, key), f"{name_of(workload)} {name}"
                assert ref.get("optional", False) is optional, f"{name_of(workload)} {name}"
            seen.add(component)
    assert {"input-reader", "app", "output-writer", "monitor"} <= seen
    assert ("retrain-server" in seen) is (values == "retraining")
    if values == "shadow":
        assert {"output-writer-shadow"} <= seen
        assert len(by_component(chart)["app"]) == 2  # the preview slot checks tokens too


def test_generated_tokens_are_long_random_and_distinct(helm: Helm,
                                                       rendered: dict[str, Rendered]) -> None:
    data = chart_secret(rendered["minimal"])
    assert {"pipeline-token", "api-key", "monitor-api-token", "checksum-salt"} <= set(data)
    assert "retrain-token" not in data  # the retrain server is off
    assert "pipeline-token-secondary" not in data
    assert "api-key-secondary" not in data  # never an empty optional key
    assert "monitor-api-token-secondary" not in data
    assert re.fullmatch(r"[A-Za-z0-9]{48}", chart_secret(rendered["retraining"])["retrain-token"])
    for key in ("pipeline-token", "api-key", "monitor-api-token"):
        assert re.fullmatch(r"[A-Za-z0-9]{48}", data[key]), key
    assert len(data["checksum-salt"]) >= 32
    assert len(set(data.values())) == len(data)
    again = chart_secret(helm.template(["minimal"]))
    assert again["pipeline-token"] != data["pipeline-token"], (
        "helm template cannot look the Secret up: every render draws new tokens")


def test_tokens_given_in_values_are_used_as_given(helm: Helm) -> None:
    chart = helm.template(["retraining"], set_strings={
        **FIXED, "auth.pipelineTokenSecondary": "TESTSECRET-pipeline-token-two",
        "auth.apiKey.secondary": "TESTSECRET-api-key-number-two",
        "auth.monitorApiTokenSecondary": "TESTSECRET-monitor-token-two",
        "auth.retrainTokenSecondary": "TESTSECRET-retrain-token-two"})
    assert chart_secret(chart) == {
        "pipeline-token": "TESTSECRET-pipeline-token-one",
        "pipeline-token-secondary": "TESTSECRET-pipeline-token-two",
        "api-key": "TESTSECRET-api-key-number-one",
        "api-key-secondary": "TESTSECRET-api-key-number-two",
        "monitor-api-token": "TESTSECRET-monitor-token-one",
        "monitor-api-token-secondary": "TESTSECRET-monitor-token-two",
        "retrain-token": "TESTSECRET-retrain-token-one",
        "retrain-token-secondary": "TESTSECRET-retrain-token-two",
        "checksum-salt": "TESTSECRET-checksum-salt"}
    text = "\n".join(yaml.safe_dump(item) for item in chart.objects if item["kind"] != "Secret")
    for token in ("pipeline-token-one", "pipeline-token-two", "api-key-number", "checksum-salt",
                  "monitor-token-", "retrain-token-one", "retrain-token-two"):
        assert token not in text, f"{token} outside the Secret"


@pytest.mark.parametrize("values", MATRIX)
def test_the_services_start_with_what_the_chart_gives_them(
        rendered: dict[str, Rendered], clean_env: pytest.MonkeyPatch, tmp_path: Path,
        values: str) -> None:
    """Each container's environment, Secret keys resolved, builds the service's real
    settings: a pipeline token on every pipeline service (they refuse to start without),
    the receivers' tokens equal to what the senders send, the app's API key, the
    monitor's API token, and the retrain token the monitor sends equal to the one the
    retrain server requires; the reader's privacy stage and the monitor's GDPR settings
    load the policy and keys they are given. ConfigMaps and Secrets mounted as files (the
    reader's schema and privacy policy, the monitor's rules, the keyrings) are "mounted" by
    writing them to files."""
    chart = rendered[values]
    secrets = {**EXISTING_SECRETS, **rendered_secrets(chart)}
    tokens = chart_secret(chart) or EXISTING_SECRETS["agogosml-auth"]
    started = 0
    retrain_tokens: dict[str, str | None] = {}
    for component, workloads in by_component(chart).items():
        if component == "test":
            continue
        for workload in workloads:
            env = container_env(chart, workload, secrets, tmp_path)
            gdpr = {name: value for name, value in env.items()
                    if name.startswith("AGOGOSML_GDPR_")}
            settings = start(clean_env, {name: value for name, value in env.items()
                                         if name not in gdpr})
            started += 1
            if component == "input-reader":
                assert (settings.privacy_policy_path is not None) is privacy_on(chart)
                reader_privacy_works(settings, clean_env, tmp_path)
            if component == "monitor":
                assert secret_value(settings.api_token) == tokens["monitor-api-token"]
                assert settings.api_token_secondary is None
                retrain_tokens["sent"] = secret_value(settings.retrain_token)
                assert settings.gdpr_enabled is privacy_on(chart)
                if settings.gdpr_enabled:
                    monitor_gdpr_works(start_gdpr(clean_env, gdpr), env)
                continue
            if component == "retrain-server":
                retrain_tokens["required"] = secret_value(settings.token)
                continue
            assert secret_value(settings.pipeline_token) == tokens["pipeline-token"]
            if component != "input-reader":
                assert settings.pipeline_token_secondary is None
            if component == "app":
                assert secret_value(settings.api_key) == tokens["api-key"]
                assert settings.reload_interval_s in (0, 10)
    assert started >= 4
    if "required" in retrain_tokens:
        assert retrain_tokens["sent"] == retrain_tokens["required"] == tokens["retrain-token"]
    else:
        assert retrain_tokens == {"sent": None}


def test_without_an_api_key_the_app_and_helm_test_go_without(helm: Helm) -> None:
    chart = helm.template(["minimal"], sets={"auth.apiKey.enabled": "false"})
    assert "api-key" not in chart_secret(chart)
    app = only_container(chart.get("Deployment", f"{APP}-blue"))
    assert set(auth_env(app)) == {"AGOGOSML_APP_PIPELINE_TOKEN",
                                  "AGOGOSML_APP_PIPELINE_TOKEN_SECONDARY"}
    (pod,) = chart.of_kind("Pod")
    (predict,) = pod["spec"]["containers"]
    assert "env" not in predict
    assert not [arg for arg in predict["args"] if "authorization" in str(arg).lower()]


@pytest.mark.parametrize(("values", "secret"), [
    ("minimal", FULLNAME), ("existing-secret", "agogosml-auth")])
def test_helm_test_sends_the_api_key_without_holding_it(rendered: dict[str, Rendered],
                                                        values: str, secret: str) -> None:
    """The key comes from the Secret into the container's environment; Kubernetes puts
    it into the header argument ($(VAR) expansion), so the Pod spec never holds it."""
    chart = rendered[values]
    (pod,) = chart.of_kind("Pod")
    (predict,) = pod["spec"]["containers"]
    assert env_of(predict)["AGOGOSML_APP_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": secret, "key": "api-key"}
    header = predict["args"].index("authorization: Bearer $(AGOGOSML_APP_API_KEY)")
    assert predict["args"][header - 1] == "--header"
    for value in chart_secret(chart).values():
        assert value not in yaml.safe_dump(pod)


# --- rotation ------------------------------------------------------------------------


ROTATION = [
    ("before", {"auth.pipelineToken": "TESTSECRET-token-old-0001"}),
    ("1. new token as secondary", {"auth.pipelineToken": "TESTSECRET-token-old-0001",
                                   "auth.pipelineTokenSecondary": "TESTSECRET-token-new-0002"}),
    ("2. swap", {"auth.pipelineToken": "TESTSECRET-token-new-0002",
                 "auth.pipelineTokenSecondary": "TESTSECRET-token-old-0001"}),
    ("3. clear secondary", {"auth.pipelineToken": "TESTSECRET-token-new-0002"}),
]


def test_rotating_the_pipeline_token_never_refuses_a_batch(
        helm: Helm, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The three steps of values.yaml. During each rollout old and new pods run side by
    side: whatever any of them sends, any of them accepts. Each step rolls exactly the
    pods whose keys changed."""
    steps = []
    for label, tokens in ROTATION:
        chart = helm.template(["shadow"], set_strings={**FIXED, **tokens})
        secrets = rendered_secrets(chart)
        sent: set[str] = set()
        accepted: list[set[str]] = []
        annotations: dict[str, str] = {}
        for component, workloads in by_component(chart).items():
            for workload in workloads:
                if component not in PIPELINE:
                    continue  # the monitor has no pipeline token
                annotations[name_of(workload)] = workload["spec"]["template"]["metadata"][
                    "annotations"]["checksum/secret"]
                settings = start(clean_env, container_env(chart, workload, secrets, tmp_path))
                primary = secret_value(settings.pipeline_token)
                assert primary is not None
                if component in ("input-reader", "app"):
                    sent.add(primary)  # the reader to the slots, the slots to the writers
                if component != "input-reader":
                    secondary = secret_value(settings.pipeline_token_secondary)
                    accepted.append({primary} | ({secondary} if secondary else set()))
        steps.append((label, sent, accepted, annotations))
    # Skipping a step would refuse batches: the check below can fail.
    assert not steps[2][1] <= steps[0][2][0]
    for (before, sent_a, accepted_a, rolled_a), (after, sent_b, accepted_b, rolled_b) in \
            itertools.pairwise(steps):
        for receiver in accepted_a + accepted_b:
            assert sent_a | sent_b <= receiver, f"{before} -> {after}: a batch is refused"
        changed = {name for name in rolled_a if rolled_a[name] != rolled_b[name]}
        reader = f"{FULLNAME}-input-reader"
        receivers = set(rolled_a) - {reader}
        if after.startswith("2."):
            assert changed == set(rolled_a), after  # every service sends or checks it
        else:
            assert changed == receivers, f"{after}: only the receivers' accepted set changes"


# --- the checksum annotation -----------------------------------------------------------


def checksums(chart: Rendered) -> dict[str, str]:
    return {name_of(item): item["spec"]["template"]["metadata"].get("annotations", {})
            .get("checksum/secret", "") for item in chart.of_kind("Deployment")}


def unsalted_candidates(chart: Rendered) -> set[str]:
    """Hashes an unsalted checksum could have been: of each value (plain and base64),
    of the Secret's data block as the chart used to hash it, of the data without salt."""
    secret = chart.get("Secret", FULLNAME)
    data = chart_secret(chart)
    texts = [*data.values(), *secret["data"].values(),
             "\n".join(f"{key}: {value}" for key, value in secret["data"].items()),
             "\n".join(f"{key}: {value!s}" for key, value in sorted(secret["data"].items())),
             "\n" + "\n".join(f"{key}: \"{value}\"" for key, value in secret["data"].items()),
             yaml.safe_dump(secret["data"]), yaml.safe_dump(data)]
    unsalted = {key: value for key, value in data.items() if key != "checksum-salt"}
    for keys in ([k for k in sorted(unsalted)], ["pipeline-token"],
                 ["api-key", "pipeline-token"], ["kafka-sasl-password", "pipeline-token"]):
        texts.append("\n".join(f"{key}={unsalted.get(key, '')}" for key in keys))
    return {hashlib.sha256(text.encode()).hexdigest() for text in texts}


@pytest.mark.parametrize("values", ["sasl", "monitoring", "eventhubs-native", "minimal"])
def test_the_checksum_is_salted_and_reveals_nothing(rendered: dict[str, Rendered],
                                                    values: str) -> None:
    chart = rendered[values]
    data = chart_secret(chart)
    salt = data["checksum-salt"]
    reads = {f"{FULLNAME}-input-reader": {"kafka-sasl-password", "eventhubs-connection-string",
                                          "eventhubs-checkpoint-blob-connection-string",
                                          "pipeline-token"},
             f"{FULLNAME}-output-writer": {"kafka-sasl-password",
                                           "eventhubs-connection-string", "pipeline-token"},
             f"{APP}-blue": {"pipeline-token", "api-key"},
             f"{FULLNAME}-monitor": {"kafka-sasl-password", "eventhubs-connection-string",
                                     "eventhubs-checkpoint-blob-connection-string",
                                     "monitor-api-token"}}
    found = checksums(chart)
    candidates = unsalted_candidates(chart)
    for name, keys in reads.items():
        annotation = found[name]
        assert re.fullmatch(r"[0-9a-f]{64}", annotation), name
        assert annotation not in candidates, f"{name}: an unsalted hash"
        lines = "\n".join(f"{key}={data[key]}" for key in sorted(keys & set(data)))
        assert annotation == hashlib.sha256(f"{salt}\n{lines}".encode()).hexdigest(), name
    for value in data.values():
        assert value not in yaml.safe_dump([item for item in chart.objects
                                            if item["kind"] != "Secret"])


def test_a_new_salt_changes_every_checksum(helm: Helm) -> None:
    """Same secrets, another salt: nothing in the annotation can be matched across
    releases, and under helm template (no lookup) each render draws its own salt."""
    one = checksums(helm.template(["sasl"], set_strings=FIXED))
    same = checksums(helm.template(["sasl"], set_strings=FIXED))
    other = checksums(helm.template(["sasl"], set_strings={
        **FIXED, "secretChecksumSalt": "TESTSECRET-another-salt"}))
    assert one == same
    assert all(one[name] != other[name] for name in one)


@pytest.mark.parametrize(("sets", "rolled"), [
    ({"auth.apiKey.secondary": "TESTSECRET-api-key-number-two"}, {f"{APP}-blue"}),
    ({"kafka.sasl.password": "another-password"},
     {f"{FULLNAME}-input-reader", f"{FULLNAME}-output-writer", f"{FULLNAME}-monitor"}),
    ({"auth.monitorApiTokenSecondary": "TESTSECRET-monitor-token-two"},
     {f"{FULLNAME}-monitor"}),
    ({"auth.pipelineTokenSecondary": "TESTSECRET-pipeline-token-two"},
     {f"{APP}-blue", f"{FULLNAME}-output-writer"}),
    ({"auth.pipelineToken": "TESTSECRET-pipeline-token-two"},
     {f"{APP}-blue", f"{FULLNAME}-output-writer", f"{FULLNAME}-input-reader"}),
])
def test_a_changed_key_rolls_exactly_the_pods_that_read_it(helm: Helm, sets: dict[str, str],
                                                           rolled: set[str]) -> None:
    before = checksums(helm.template(["sasl"], set_strings=FIXED))
    after = checksums(helm.template(["sasl"], set_strings={**FIXED, **sets}))
    assert {name for name in before if before[name] != after[name]} == rolled


def test_nothing_from_the_chart_secret_no_checksum(rendered: dict[str, Rendered]) -> None:
    """With every secret in Secrets of their own there is no chart Secret and nothing
    the chart could hash."""
    chart = rendered["existing-secret"]
    assert chart.find("Secret", FULLNAME) is None
    assert set(checksums(chart).values()) == {""}


# --- NetworkPolicy ---------------------------------------------------------------------


PROMETHEUS = netpol.Pod("prometheus-0", "monitoring", {"app.kubernetes.io/name": "prometheus"})
PROMETHEUS_ELSEWHERE = netpol.Pod("prometheus-1", "team-x",
                                  {"app.kubernetes.io/name": "prometheus"})
DNS = netpol.Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
NEIGHBOUR = netpol.Pod("neighbour", NAMESPACE, {"app": "something-else"})
STRANGER = netpol.Pod("stranger", "other", {"app": "something-else"})
LOOKALIKE = netpol.Pod("fake-reader", "other", {
    "app.kubernetes.io/name": "agogosml", "app.kubernetes.io/instance": RELEASE,
    COMPONENT: "input-reader"})
INGRESS_NGINX = netpol.Pod("controller", "ingress-nginx", {"app": "ingress-nginx"})
MLFLOW_POD = netpol.Pod("mlflow", "mlops", {"app.kubernetes.io/name": "mlflow"})
EVENT_HUBS = netpol.Address("20.42.1.5")
EXCLUDED = netpol.Address("20.42.7.9")
BLOB = netpol.Address("52.239.10.1")
ELSEWHERE = netpol.Address("93.184.216.34")
PORTS = {"input-reader": 8002, "app": 8000, "output-writer": 8001,
         "output-writer-shadow": 8001, "monitor": 8005, "retrain-server": 8080}
SCRAPED = {component: port for component, port in PORTS.items() if component != "retrain-server"}
"""What networkPolicy.metrics.from may reach: every service, not the retrain server."""
ALERTMANAGER = netpol.Pod("alertmanager-0", "monitoring",
                          {"app.kubernetes.io/name": "alertmanager"})


def policies(chart: Rendered) -> list[Manifest]:
    return [{**item, "metadata": {**item["metadata"], "namespace": NAMESPACE}}
            for item in chart.of_kind("NetworkPolicy")]


def release_pods(chart: Rendered) -> dict[str, netpol.Pod]:
    return {pod.name: pod for pod in netpol.pods_of(chart.objects, NAMESPACE)}


def role(pod: netpol.Pod) -> str:
    """A release pod by its component; any other pod by its (unique) name."""
    if pod.namespace == NAMESPACE and pod.labels.get("app.kubernetes.io/instance") == RELEASE:
        return pod.labels[COMPONENT]
    return pod.name


def connections(chart: Rendered, others: list[netpol.Pod]) -> set[tuple[str, str, int]]:
    """Every (source, destination, port) allowed between the release's pods and
    `others`, over the ports the services listen on, by role (component)."""
    rules = policies(chart)
    pods = list(release_pods(chart).values()) + others
    ports = sorted(set(PORTS.values()))
    return {(role(source), role(destination), port)
            for source in pods for destination in pods for port in ports
            if source is not destination and netpol.allowed(rules, source, destination, port)
            and not (source in others and destination in others)}


def test_the_pipeline_hops_are_the_only_connections(rendered: dict[str, Rendered]) -> None:
    """Shadow on and retraining off: the reader reaches both slots (production and
    preview), both slots reach both writers, `helm test` reaches the slots, the monitor
    the reader, the slots and the output writer (their /metrics; not the shadow writer),
    Prometheus every service's port; nothing else between pods, in or out."""
    chart = rendered["shadow"]
    slots = 2
    assert len([pod for pod in release_pods(chart).values() if role(pod) == "app"]) == slots
    expected = {("input-reader", "app", 8000), ("test", "app", 8000),
                ("app", "output-writer", 8001), ("app", "output-writer-shadow", 8001),
                ("monitor", "input-reader", 8002), ("monitor", "app", 8000),
                ("monitor", "output-writer", 8001)}
    expected |= {("prometheus-0", component, port) for component, port in SCRAPED.items()}
    others = [PROMETHEUS, PROMETHEUS_ELSEWHERE, NEIGHBOUR, STRANGER, LOOKALIKE, DNS]
    # The default metrics peers are Prometheus pods in any namespace (values.yaml says to
    # narrow it); blue -> green (both "app") is not allowed.
    expected |= {("prometheus-1", component, port) for component, port in SCRAPED.items()}
    assert connections(chart, others) == expected


def test_the_retrain_server_admits_the_monitor_alone(rendered: dict[str, Rendered]) -> None:
    """With the retrain server on, the only new connection is monitor -> retrain server;
    Prometheus, the pipeline's pods and strangers cannot reach it, and it reaches only
    MLflow (and DNS)."""
    chart = rendered["retraining"]
    others = [PROMETHEUS, PROMETHEUS_ELSEWHERE, NEIGHBOUR, STRANGER, LOOKALIKE, DNS]
    to_server = {(source, port) for source, destination, port in connections(chart, others)
                 if destination == "retrain-server"}
    assert to_server == {("monitor", 8080)}
    from_server = {(destination, port) for source, destination, port
                   in connections(chart, others) if source == "retrain-server"}
    assert from_server == set()
    rules = policies(chart)
    (server,) = [pod for pod in release_pods(chart).values() if role(pod) == "retrain-server"]
    assert netpol.allowed(rules, server, ELSEWHERE, 5000)
    assert not netpol.allowed(rules, server, ELSEWHERE, 9092)
    (monitor,) = [pod for pod in release_pods(chart).values() if role(pod) == "monitor"]
    off = rendered["minimal"]
    (monitor_off,) = [pod for pod in release_pods(off).values() if role(pod) == "monitor"]
    assert netpol.allowed(rules, monitor, server, 8080)
    assert not any(netpol.allowed(policies(off), monitor_off, pod, 8080)
                   for pod in release_pods(off).values())


def test_the_monitor_takes_labels_and_alerts_only_from_its_clients(
        rendered: dict[str, Rendered]) -> None:
    """networkPolicy.monitorClients (Alertmanager in network-peers) and Prometheus reach
    the monitor's port; no one else, and by default no client at all."""
    for values, client_admitted in (("minimal", False), ("network-peers", True)):
        chart = rendered[values]
        rules = policies(chart)
        (monitor,) = [pod for pod in release_pods(chart).values() if role(pod) == "monitor"]
        assert netpol.allowed(rules, ALERTMANAGER, monitor, 8005) is client_admitted, values
        assert netpol.allowed(rules, PROMETHEUS, monitor, 8005), values
        for stranger in (STRANGER, NEIGHBOUR, LOOKALIKE):
            assert not netpol.allowed(rules, stranger, monitor, 8005), (values, stranger.name)
        for pod in release_pods(chart).values():
            assert not netpol.allowed(rules, pod, monitor, 8005), (values, pod.name)


def test_the_writer_admits_only_the_app_slots_and_prometheus(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["shadow"]
    pods = release_pods(chart)
    rules = policies(chart)
    for writer in (pod for pod in pods.values() if role(pod).startswith("output-writer")):
        admitted = {role(source) for source in [*pods.values(), PROMETHEUS, PROMETHEUS_ELSEWHERE,
                                                NEIGHBOUR, STRANGER, LOOKALIKE, DNS]
                    if source is not writer and netpol.allowed(rules, source, writer, 8001)}
        # the monitor reads the output writer's /metrics, not the shadow writer's
        monitor = {"monitor"} if role(writer) == "output-writer" else set()
        assert admitted == {"app", "prometheus-0", "prometheus-1", *monitor}, writer.name
    (policy,) = [item for item in chart.of_kind("NetworkPolicy")
                 if name_of(item) == f"{FULLNAME}-output-writers"]
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert peers == [
        {"podSelector": {"matchLabels": {COMPONENT: "app", "app.kubernetes.io/instance": RELEASE,
                                         "app.kubernetes.io/name": "agogosml"}}},
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "prometheus"}}},
        {"podSelector": {"matchLabels": {COMPONENT: "monitor",
                                         "app.kubernetes.io/instance": RELEASE,
                                         "app.kubernetes.io/name": "agogosml"}}}]
    assert {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]} == {8001}


@pytest.mark.parametrize("values", MATRIX)
def test_every_pod_of_the_release_is_denied_by_default(rendered: dict[str, Rendered],
                                                       values: str) -> None:
    """Every pod the release runs (Deployments, the retraining Jobs' pods, the helm test
    pod) is selected for ingress and egress by at least one policy, and reaches DNS."""
    chart = rendered[values]
    rules = policies(chart)
    for pod in release_pods(chart).values():
        for direction in ("Ingress", "Egress"):
            assert netpol.selecting(rules, pod, direction), f"{pod.name}: {direction} open"
        assert netpol.allowed(rules, pod, DNS, 53, "UDP"), pod.name
        assert netpol.allowed(rules, pod, DNS, 53, "TCP"), pod.name
        assert not netpol.allowed(rules, pod, DNS, 8000), pod.name
        assert not netpol.allowed(rules, STRANGER, pod, PORTS.get(role(pod), 8000)), pod.name


def test_egress_to_kafka_and_mlflow_by_default(rendered: dict[str, Rendered]) -> None:
    """Kafka ports (9092, 9093) for the reader, writers and monitor, MLflow (5000) for the
    slots, the monitor, the retraining Jobs and the retrain server; any address, since the
    defaults name none."""
    for values in ("minimal", "retraining"):
        chart = rendered[values]
        rules = policies(chart)
        for pod in release_pods(chart).values():
            events = role(pod) in ("input-reader", "output-writer", "monitor")
            mlflow = role(pod) in ("app", "retrain", "monitor", "retrain-server")
            for port in (9092, 9093):
                assert netpol.allowed(rules, pod, ELSEWHERE, port) is events, (pod.name, port)
            assert netpol.allowed(rules, pod, ELSEWHERE, 5000) is mlflow, pod.name
            assert not netpol.allowed(rules, pod, ELSEWHERE, 443), pod.name
    assert {"retrain", "retrain-server", "monitor"} <= {
        role(pod) for pod in release_pods(rendered["retraining"]).values()}


def test_native_event_hubs_gets_amqp_and_https(rendered: dict[str, Rendered]) -> None:
    chart = rendered["eventhubs-native"]
    rules = policies(chart)
    for pod in release_pods(chart).values():
        events = role(pod) in ("input-reader", "output-writer", "monitor")
        for port in (5671, 5672, 443):
            assert netpol.allowed(rules, pod, ELSEWHERE, port) is events, (pod.name, port)
        assert not netpol.allowed(rules, pod, ELSEWHERE, 9092), pod.name


def test_configured_peers_narrow_every_rule(rendered: dict[str, Rendered]) -> None:
    """network-peers.yaml: Prometheus from one namespace only, clients through the
    ingress controller, Event Hubs by CIDR (with an exception), MLflow by selector and
    its artifact store by CIDR on 443."""
    chart = rendered["network-peers"]
    rules = policies(chart)
    pods = release_pods(chart)
    app = pods[f"{APP}-blue"]
    reader = pods[f"{FULLNAME}-input-reader"]
    writer = pods[f"{FULLNAME}-output-writer"]
    assert netpol.allowed(rules, PROMETHEUS, writer, 8001)
    assert not netpol.allowed(rules, PROMETHEUS_ELSEWHERE, writer, 8001)
    assert netpol.allowed(rules, INGRESS_NGINX, app, 8000)
    assert not netpol.allowed(rules, INGRESS_NGINX, writer, 8001)
    assert not netpol.allowed(rules, INGRESS_NGINX, reader, 8002)
    for pod in (reader, writer):
        assert netpol.allowed(rules, pod, EVENT_HUBS, 9093)
        assert not netpol.allowed(rules, pod, EVENT_HUBS, 9092)
        assert not netpol.allowed(rules, pod, EXCLUDED, 9093)
        assert not netpol.allowed(rules, pod, ELSEWHERE, 9093)
    assert netpol.allowed(rules, app, MLFLOW_POD, 5000)
    assert not netpol.allowed(rules, app, ELSEWHERE, 5000)
    assert netpol.allowed(rules, app, BLOB, 443)
    assert not netpol.allowed(rules, app, ELSEWHERE, 443)
    assert not netpol.allowed(rules, reader, MLFLOW_POD, 5000)


def test_an_empty_peer_list_admits_no_one(helm: Helm) -> None:
    """An ingress rule without `from` would admit every source: the chart leaves the rule
    out instead."""
    chart = helm.template(["minimal"], extra=("--set-json", "networkPolicy.metrics.from=[]"))
    rules = policies(chart)
    for item in chart.of_kind("NetworkPolicy"):
        for rule in item["spec"].get("ingress") or []:
            assert rule.get("from"), name_of(item)
    for pod in release_pods(chart).values():
        assert not netpol.allowed(rules, PROMETHEUS, pod, PORTS.get(role(pod), 8000)), pod.name


def test_network_policy_can_be_turned_off(helm: Helm) -> None:
    chart = helm.template(["minimal"], sets={"networkPolicy.enabled": "false"})
    assert not chart.of_kind("NetworkPolicy")
    assert yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]["enabled"] is True


def test_the_evaluator_knows_the_api_semantics() -> None:
    """The reference the policies are checked against, on cases the API docs spell out."""
    web = netpol.Pod("web", "a", {"app": "web"}, ports={"http": 8080})
    db = netpol.Pod("db", "a", {"app": "db"})
    elsewhere = netpol.Pod("web", "b", {"app": "web"})
    deny_all: Manifest = {"metadata": {"name": "d", "namespace": "a"},
                          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    assert netpol.allowed([], web, db, 1)  # no policy: open
    assert not netpol.allowed([deny_all], web, db, 1)
    from_web: Manifest = {"metadata": {"name": "w", "namespace": "a"}, "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                     "ports": [{"port": 5432}]}]}}
    assert netpol.allowed([deny_all, from_web], web, db, 5432)
    assert not netpol.allowed([deny_all, from_web], web, db, 5433)
    assert not netpol.allowed([deny_all, from_web], elsewhere, db, 5432)  # other namespace
    any_source: Manifest = {"metadata": {"name": "n", "namespace": "a"}, "spec": {
        "podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": "http"}]}]}}
    assert netpol.allowed([deny_all, any_source], elsewhere, web, 8080)  # named port, no from
    assert not netpol.allowed([deny_all, any_source], elsewhere, web, 8081)


# --- the rollout tool's Role -------------------------------------------------------------


KIND_RESOURCES = {
    "Deployment": ("apps", "deployments"), "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"), "Secret": ("", "secrets"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "ServiceAccount": ("", "serviceaccounts"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "CronJob": ("batch", "cronjobs"), "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors"),
    "PrometheusRule": ("monitoring.coreos.com", "prometheusrules"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
    "TriggerAuthentication": ("keda.sh", "triggerauthentications"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
}
HELM_MANAGES = {"get", "create", "patch", "delete"}


def granted(role: Manifest, group: str, resource: str, name: str | None = None) -> set[str]:
    verbs: set[str] = set()
    for rule in role["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"] and (
                "resourceNames" not in rule or name in rule["resourceNames"]):
            verbs |= set(rule["verbs"])
    return verbs


def test_no_rollout_role_unless_asked(rendered: dict[str, Rendered]) -> None:
    for values in MATRIX:
        kinds = {item["kind"] for item in rendered[values].objects}
        assert bool(kinds & {"Role", "RoleBinding"}) is (values == "rollout-rbac"), values


def test_the_rollout_role_grants_what_the_tool_and_helm_use(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["rollout-rbac"]
    name = f"{FULLNAME}-rollout"
    role = chart.get("Role", name)
    manage = {"get", "create", "update", "patch", "delete"}
    assert granted(role, "apps", "deployments") == manage  # read by name: no list
    assert granted(role, "", "services") == manage
    assert granted(role, "", "pods") == set()
    assert granted(role, "", "pods/proxy") == {"get"}  # the gate's GET /metrics per pod
    assert granted(role, "discovery.k8s.io", "endpointslices") == {"list"}
    assert granted(role, "", "configmaps") == {"get", "create", "update", "patch", "delete"}
    assert granted(role, "", "secrets") == {"get", "list", "create", "update", "patch",
                                            "delete"}
    assert granted(role, "autoscaling", "horizontalpodautoscalers") >= HELM_MANAGES
    assert granted(role, "batch", "cronjobs") == set()  # retraining is off
    assert granted(role, "rbac.authorization.k8s.io", "roles", name) == {"get", "update", "patch"}
    assert granted(role, "rbac.authorization.k8s.io", "roles", "admin") == set()
    assert granted(role, "rbac.authorization.k8s.io", "rolebindings", "other") == set()
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["apiGroups"] + rule["resources"], rule
        assert not set(rule["verbs"]) & {"watch", "escalate", "bind", "impersonate",
                                         "deletecollection"}, rule
        subresources = {item for item in rule["resources"] if "/" in item}
        assert subresources <= {"pods/proxy"}, rule  # no exec, logs, tokens
    assert not chart.of_kind("ClusterRole")
    assert not chart.of_kind("ClusterRoleBinding")
    binding = chart.get("RoleBinding", name)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                    "namespace": NAMESPACE}]
    account = chart.get("ServiceAccount", name)
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("values", MATRIX)
def test_the_role_covers_every_kind_the_release_renders(helm: Helm, values: str) -> None:
    """Whatever the values render, `helm upgrade` by the rollout tool may get, create,
    patch and delete it (Roles and RoleBindings: only its own, which helm reads and
    patches); the kinds the release does not render are not granted."""
    chart = helm.template([values], sets={"rollout.rbac.create": "true"})
    name = f"{FULLNAME}-rollout"
    role = chart.get("Role", name)
    rendered_kinds = set()
    for item in chart.objects:
        if "helm.sh/hook" in (item["metadata"].get("annotations") or {}):
            continue  # the test pod: only `helm test` creates it
        assert item["kind"] in KIND_RESOURCES, f"{item['kind']}: add it to the Role"
        group, resource = KIND_RESOURCES[item["kind"]]
        rendered_kinds.add((group, resource))
        verbs = granted(role, group, resource, name_of(item))
        needed = {"get", "patch"} if group == "rbac.authorization.k8s.io" else HELM_MANAGES
        assert needed <= verbs, f"{item['kind']} {name_of(item)}: {sorted(verbs)}"
    # what the tool itself reads, its journal, and helm's release records
    own = {("", "pods/proxy"), ("discovery.k8s.io", "endpointslices"), ("", "configmaps"),
           ("", "secrets")}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) in rendered_kinds | own, (
                    f"{group}/{resource} is granted but {values} renders none")


def test_the_role_can_bind_a_service_account_of_your_own(helm: Helm) -> None:
    chart = helm.template(["rollout-rbac"], sets={
        "rollout.rbac.serviceAccount.create": "false",
        "rollout.rbac.serviceAccount.name": "deployer",
        "rollout.rbac.serviceAccount.namespace": "ci"})
    assert chart.get("RoleBinding", f"{FULLNAME}-rollout")["subjects"] == [
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]
    assert chart.names("ServiceAccount") == {FULLNAME}  # the services' own, not the tool's
    message = fails(helm, "rollout-rbac", sets={"rollout.rbac.serviceAccount.namespace": "ci"})
    assert "rollout.rbac.serviceAccount.namespace ci: a ServiceAccount the chart creates" in (
        message)


# --- slots pin a model version ----------------------------------------------------------


def slot_env(chart: Rendered) -> dict[str, dict[str, str]]:
    return {item["metadata"]["labels"]["agogosml.io/slot"]: env_values(only_container(item))
            for item in chart.of_kind("Deployment")
            if item["metadata"]["labels"][COMPONENT] == "app"}


def test_slots_default_to_a_pinned_version_and_never_reload() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for slot, settings in values["app"]["slots"].items():
        assert re.fullmatch(r"models:/[^/@]+/[0-9]+", settings["modelUri"]), slot
        assert settings["followAlias"] is False, slot


@pytest.mark.parametrize(("values", "expected"), [
    ("minimal", {"blue": "0"}), ("green-live", {"blue": "0", "green": "0"}),
    ("shadow", {"blue": "0", "green": "10"})])
def test_only_a_slot_that_follows_its_alias_reloads(rendered: dict[str, Rendered],
                                                    values: str,
                                                    expected: dict[str, str]) -> None:
    env = slot_env(rendered[values])
    assert {slot: item["AGOGOSML_APP_RELOAD_INTERVAL_S"] for slot, item in env.items()} == \
        expected
    if values == "shadow":
        assert env["green"]["AGOGOSML_APP_MODEL_URI"] == "models:/fraud@challenger"


def test_the_alias_check_interval_is_a_value(helm: Helm) -> None:
    env = slot_env(helm.template(["shadow"], sets={"app.aliasReloadIntervalS": "30"}))
    assert (env["blue"]["AGOGOSML_APP_RELOAD_INTERVAL_S"],
            env["green"]["AGOGOSML_APP_RELOAD_INTERVAL_S"]) == ("0", "30")


@pytest.mark.parametrize("uri", ["models:/demo@champion", "models:/demo/latest",
                                 "models:/demo/Production", "models:/demo@challenger"])
@pytest.mark.parametrize("slot", ["blue", "green"])
def test_a_moving_model_reference_needs_follow_alias(helm: Helm, uri: str, slot: str) -> None:
    """The schema refuses it for an enabled slot and a disabled one alike; without the
    schema the templates do; followAlias: true lets it through."""
    sets = {f"app.slots.{slot}.modelUri": uri}
    error = fails(helm, "minimal", set_strings=sets)
    assert (f"at '/app/slots/{slot}/modelUri': value must be 'models:/<name>/<version>, a "
            "pinned version; an @alias, latest or a stage needs followAlias: true on this "
            "slot'") in error
    skipped = fails(helm, "minimal", set_strings=sets, extra=("--skip-schema-validation",))
    assert (f"app.slots.{slot}.modelUri {uri} is a moving reference: pin a version") in skipped
    assert f"set app.slots.{slot}.followAlias=true" in skipped
    helm.template(["minimal"], set_strings=sets, sets={f"app.slots.{slot}.followAlias": "true"})


@pytest.mark.parametrize("uri", ["models:/demo/12", "runs:/0a1b2c/model",
                                 "s3://models/demo/7"])
def test_pinned_references_are_accepted(helm: Helm, uri: str) -> None:
    chart = helm.template(["minimal"], set_strings={"app.slots.blue.modelUri": uri})
    assert slot_env(chart)["blue"]["AGOGOSML_APP_MODEL_URI"] == uri


def test_notes_warn_about_a_slot_that_follows_an_alias(helm: Helm, tmp_path: Path) -> None:
    assert "WARNING" not in helm.notes(tmp_path / "pinned", ["green-live"])
    preview = [line for line in helm.notes(tmp_path / "shadow", ["shadow"]).splitlines()
               if line.startswith("WARNING")]
    assert preview == [
        "WARNING: the green slot follows the moving model reference models:/fraud@challenger "
        "(followAlias: true): a new version registered there (a retrain, anyone with write "
        "access to the MLflow registry) is served within 10 s, without the rollout gate. Pin "
        "a version (models:/<name>/<version>) and deploy new ones with `agogosml rollout "
        "deploy`."]
    production = helm.notes(tmp_path / "production", ["shadow"],
                            sets={"productionSlot": "green"})
    assert "WARNING: the green slot, which is production, follows" in production


def test_notes_show_how_to_call_with_the_api_key(helm: Helm, tmp_path: Path) -> None:
    notes = helm.notes(tmp_path / "key", ["minimal"])
    assert (f"kubectl --namespace {NAMESPACE} get secret {FULLNAME} -o jsonpath="
            "'{.data.api-key}' | base64 -d") in notes
    assert '-H "authorization: Bearer $API_KEY"' in notes
    assert "NetworkPolicy is on" in notes
    open_notes = helm.notes(tmp_path / "open", ["minimal"], sets={
        "auth.apiKey.enabled": "false", "networkPolicy.enabled": "false"})
    assert "API_KEY" not in open_notes
    assert "NetworkPolicy" not in open_notes


# --- the schema -------------------------------------------------------------------------


@pytest.mark.parametrize(("sets", "message"), [
    ({"auth.pipelineToken": "too-short"}, "at '/auth/pipelineToken'"),
    ({"auth.apiKey.value": "has a space in it ok"}, "at '/auth/apiKey/value'"),
    ({"auth.apiKey.enabled": "yes"}, "at '/auth/apiKey/enabled'"),
    ({"auth.token": "x"}, "at '/auth': additional properties 'token'"),
    ({"networkPolicy.kafka.ports[0]": "0"}, "at '/networkPolicy/kafka/ports/0'"),
    ({"networkPolicy.metrics.from[0].podSelecter.x": "y"},
     "at '/networkPolicy/metrics/from/0': additional properties 'podSelecter'"),
    ({"networkPolicy.egress": "x"}, "at '/networkPolicy': additional properties 'egress'"),
    ({"rollout.rbac.create": "yes"}, "at '/rollout/rbac/create'"),
    ({"app.slots.blue.followAlias": "yes"}, "at '/app/slots/blue/followAlias'"),
])
def test_schema_rejects_bad_security_values(helm: Helm, sets: dict[str, str],
                                            message: str) -> None:
    error = fails(helm, "minimal", set_strings={key: value for key, value in sets.items()
                                                if not value.isdigit()},
                  sets={key: value for key, value in sets.items() if value.isdigit()})
    assert "don't meet the specifications of the schema" in error
    assert message in error
