"""Privacy in the Helm chart (issue 11), rendered by a real helm: on by default, the reader
gets the PII policy (a ConfigMap) and its keyring (a Secret, generated once or the
operator's), and with a privacy store its subject keys (the store's URL from a Secret and
the KEK); the monitor serves the GDPR endpoints over the same store with the same keys and
the training snapshots on the retraining claim. Off, none of it is rendered.

The files are parsed by the real code (Policy, Keyring); that the services start with them
is in tests/packaging/test_chart_security.py, and that generated keys survive upgrades and
uninstalls in tests/packaging/test_chart_privacy_on_apiserver.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from agogosml.privacy.engine import PolicyEngine
from agogosml.privacy.keys import KEY_BYTES, Keyring
from agogosml.privacy.policy import Policy, PseudonymizeRule
from tests.packaging import netpol
from tests.packaging.helm import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
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

READER = f"{RELEASE}-input-reader"
MONITOR = f"{RELEASE}-monitor"
POLICY = f"{RELEASE}-privacy-policy"
KEYRING = f"{RELEASE}-privacy-keyring"
KEK = f"{RELEASE}-privacy-kek"
DEMO_POLICY = ROOT / "agogosml" / "localstack" / "privacy-policy.yaml"
READER_PRIVACY_ENV = ("AGOGOSML_READER_PRIVACY_POLICY_PATH",
                      "AGOGOSML_READER_PRIVACY_KEYRING_PATH",
                      "AGOGOSML_READER_SUBJECT_KEYS_URL",
                      "AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH")
OWNER_READ = 0o400
DATABASE = netpol.Address("10.20.0.5")
ELSEWHERE = netpol.Address("93.184.216.34")


def fails(helm: Helm, *values: str, sets: dict[str, str] | None = None,
          extra: tuple[str, ...] = ()) -> str:
    done = helm.template_run(list(values), sets=sets, extra=extra)
    assert done.returncode != 0, f"rendered although it should not:\n{done.stdout[:2000]}"
    return done.stderr


def mounted(workload: Manifest) -> dict[str, tuple[Manifest, Manifest]]:
    """The path of each file a ConfigMap or Secret volume puts in the container -> (the
    mount, the volume); a claim's mount path -> (the mount, the volume)."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    found: dict[str, tuple[Manifest, Manifest]] = {}
    for mount in only_container(workload)["volumeMounts"]:
        volume = volumes[mount["name"]]
        source = volume.get("configMap") or volume.get("secret")
        if source is None:
            found[mount["mountPath"]] = (mount, volume)
            continue
        for item in source.get("items") or []:
            found[f"{mount['mountPath']}/{item['path']}"] = (mount, volume)
        if "items" not in source:  # a ConfigMap: one key, named after the file
            found[mount["mountPath"]] = (mount, volume)
    return found


def file_source(workload: Manifest, path: str) -> tuple[str, str, Manifest]:
    """Where a mounted file comes from: ("configMap" | "secret", the object's name, the
    mount), checked to be read-only."""
    folder = str(PurePosixPath(path).parent)
    mount, volume = mounted(workload).get(path) or mounted(workload)[folder]
    assert mount["readOnly"] is True, path
    if "configMap" in volume:
        return "configMap", volume["configMap"]["name"], mount
    secret = volume["secret"]
    assert secret["defaultMode"] == OWNER_READ, f"{path}: owner-read only"
    assert secret["items"] == [{"key": PurePosixPath(path).name,
                                "path": PurePosixPath(path).name}], "only the key it needs"
    return "secret", secret["secretName"], mount


def secret_text(chart: Rendered, name: str, key: str) -> str:
    return base64.b64decode(chart.get("Secret", name)["data"][key]).decode()


def secret_ref(container: Manifest, variable: str) -> dict[str, Any]:
    entry = env_of(container)[variable]
    assert "value" not in entry, f"{variable} must come from a Secret"
    ref: dict[str, Any] = entry["valueFrom"]["secretKeyRef"]
    return ref


def keyring_of(text: str, tmp_path: Path, name: str) -> Keyring:
    """What the services do with the mounted file: Keyring.from_file."""
    path = tmp_path / name
    path.write_text(text)
    return Keyring.from_file(path)


def raw_keys(text: str) -> list[bytes]:
    data = yaml.safe_load(text)
    encoded = [*([data["pseudonym_key"]] if "pseudonym_key" in data else []),
               *data["encryption_keys"].values()]
    return [base64.b64decode(value) for value in encoded]


# --- on by default ----------------------------------------------------------------------


def test_the_reader_gets_the_policy_and_its_keyring_by_default(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["minimal"]
    assert yaml.safe_load((CHART / "values.yaml").read_text())["privacy"]["enabled"] is True
    reader = chart.get("Deployment", READER)
    env = env_values(only_container(reader))
    policy_path = env["AGOGOSML_READER_PRIVACY_POLICY_PATH"]
    keyring_path = env["AGOGOSML_READER_PRIVACY_KEYRING_PATH"]
    assert file_source(reader, policy_path)[:2] == ("configMap", POLICY)
    assert file_source(reader, keyring_path)[:2] == ("secret", KEYRING)
    assert PurePosixPath(policy_path).name in chart.get("ConfigMap", POLICY)["data"]
    assert PurePosixPath(keyring_path).name in chart.get("Secret", KEYRING)["data"]
    # no privacy store in minimal: no subject keys, no KEK for the reader
    assert "AGOGOSML_READER_SUBJECT_KEYS_URL" not in env_of(only_container(reader))
    assert "AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH" not in env
    assert not [path for path in mounted(reader) if "kek" in path]
    # the pod rolls when the policy changes
    annotations = reader["spec"]["template"]["metadata"]["annotations"]
    policy_text = chart.get("ConfigMap", POLICY)["data"][PurePosixPath(policy_path).name]
    assert annotations["checksum/privacy-policy"] == hashlib.sha256(
        policy_text.encode()).hexdigest()


def test_the_monitor_serves_gdpr_with_the_same_keys(rendered: dict[str, Rendered]) -> None:
    """minimal has no database: the privacy store is SQLite next to the monitor's events,
    on its claim."""
    chart = rendered["minimal"]
    monitor = chart.get("Deployment", MONITOR)
    env = env_values(only_container(monitor))
    assert env["AGOGOSML_MONITOR_GDPR_ENABLED"] == "true"
    assert env["AGOGOSML_GDPR_TRACKING_URI"] == env["AGOGOSML_MONITOR_TRACKING_URI"]
    store = env["AGOGOSML_GDPR_STORE_URL"]
    assert store.startswith("sqlite:////")
    events = PurePosixPath(env["AGOGOSML_MONITOR_STORE_URL"].removeprefix("sqlite:///"))
    assert PurePosixPath(store.removeprefix("sqlite:///")).parent == events.parent
    assert mounted(monitor)[str(events.parent)][1]["persistentVolumeClaim"] == {
        "claimName": MONITOR}
    assert file_source(monitor, env["AGOGOSML_GDPR_KEYRING_PATH"])[:2] == ("secret", KEYRING)
    assert file_source(monitor, env["AGOGOSML_GDPR_KEK_PATH"])[:2] == ("secret", KEK)
    reader = env_values(only_container(chart.get("Deployment", READER)))
    assert env["AGOGOSML_GDPR_KEYRING_PATH"] == reader["AGOGOSML_READER_PRIVACY_KEYRING_PATH"]
    assert json.loads(env["AGOGOSML_GDPR_SNAPSHOTS"]) == []
    assert (env["AGOGOSML_GDPR_MODEL_NAME"], env["AGOGOSML_GDPR_SHARDS"]) == ("demo", "0")
    assert "AGOGOSML_GDPR_SUBJECT_COLUMN" not in env  # no subject field in minimal


def test_the_default_policy_is_the_demos_and_protects_the_subject(
        rendered: dict[str, Rendered], tmp_path: Path) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["privacy"]["policy"] == yaml.safe_load(DEMO_POLICY.read_text())
    chart = rendered["monitoring"]  # subjectField: customer_id
    subject = env_values(only_container(chart.get("Deployment", READER)))[
        "AGOGOSML_READER_SUBJECT_FIELD"]
    policy = Policy.from_yaml(chart.get("ConfigMap", POLICY)["data"]["policy.yaml"])
    assert policy == Policy.from_file(DEMO_POLICY)
    assert isinstance(policy.fields[subject], PseudonymizeRule)
    keyring = keyring_of(secret_text(chart, KEYRING, "keyring.yaml"), tmp_path, "keyring.yaml")
    record = {subject: "c-1001", "name": "Ada Lovelace", "email": "ada@example.com",
              "phone": "+44 20 7946 0958", "amount": 912.5}
    protected = PolicyEngine(policy, keyring).apply(record)
    assert protected[subject].startswith("ps_")
    assert protected["name"] == "[REDACTED]"
    assert protected["email"].startswith("ps_")
    assert protected["phone"].endswith("58")
    assert "0958" not in protected["phone"]
    assert protected["amount"] == 912.5
    assert not {"c-1001", "Ada Lovelace", "ada@example.com"} & set(map(str, protected.values()))


def test_generated_keyrings_are_what_the_services_load(rendered: dict[str, Rendered],
                                                       helm: Helm, tmp_path: Path) -> None:
    """32 random bytes per key (what keys.py requires), this month's key id as
    `agogosml gdpr keygen` names it, a pseudonym key in the keyring only, nothing shared
    between them; kept on uninstall. `helm template` cannot look them up: each render
    draws new ones."""
    chart = rendered["minimal"]
    keyring_text = secret_text(chart, KEYRING, "keyring.yaml")
    kek_text = secret_text(chart, KEK, "kek.yaml")
    keyring = keyring_of(keyring_text, tmp_path, "keyring.yaml")
    kek = keyring_of(kek_text, tmp_path, "kek.yaml")
    now = datetime.now(UTC)
    months = {moment.strftime("%Y-%m") for moment in (now, now - timedelta(minutes=10))}
    assert keyring.has_pseudonym_key
    assert not kek.has_pseudonym_key
    assert keyring.current_key_id in months  # rendered this month (UTC), or at its turn
    assert kek.current_key_id == keyring.current_key_id
    keys = raw_keys(keyring_text) + raw_keys(kek_text)
    assert all(len(key) == KEY_BYTES for key in keys)
    assert len(set(keys)) == len(keys) == 3
    for name in (KEYRING, KEK):
        secret = chart.get("Secret", name)
        assert secret["type"] == "Opaque"
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "privacy"
    again = helm.template(["minimal"])
    assert secret_text(again, KEYRING, "keyring.yaml") != keyring_text
    for item in chart.objects:  # key material only in its Secrets
        if item["kind"] != "Secret":
            text = yaml.safe_dump(item)
            assert not [key for key in keys if base64.b64encode(key).decode() in text]


def test_existing_secrets_are_used_instead_of_generated_keys(
        rendered: dict[str, Rendered]) -> None:
    """existing-secret: the keyrings are the operator's; the monitor's database (from its
    Secret) is the privacy store, so the reader gets subject keys from it."""
    chart = rendered["existing-secret"]
    assert not chart.of_kind("Secret")
    reader = chart.get("Deployment", READER)
    monitor = chart.get("Deployment", MONITOR)
    reader_env, monitor_env = (env_values(only_container(item)) for item in (reader, monitor))
    assert file_source(reader, reader_env["AGOGOSML_READER_PRIVACY_KEYRING_PATH"])[:2] == (
        "secret", "agogosml-privacy-keyring")
    assert file_source(reader, reader_env["AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH"])[:2] == (
        "secret", "agogosml-privacy-kek")
    assert file_source(monitor, monitor_env["AGOGOSML_GDPR_KEYRING_PATH"])[:2] == (
        "secret", "agogosml-privacy-keyring")
    assert file_source(monitor, monitor_env["AGOGOSML_GDPR_KEK_PATH"])[:2] == (
        "secret", "agogosml-privacy-kek")
    store = {"name": "agogosml-monitor-store", "key": "url"}
    assert secret_ref(only_container(reader), "AGOGOSML_READER_SUBJECT_KEYS_URL") == store
    assert secret_ref(only_container(monitor), "AGOGOSML_GDPR_STORE_URL") == store
    assert secret_ref(only_container(monitor), "AGOGOSML_MONITOR_STORE_URL") == store


def test_a_privacy_store_gives_the_reader_subject_keys(rendered: dict[str, Rendered],
                                                       helm: Helm) -> None:
    """privacy: the store's URL given inline goes into the chart's Secret; the reader and
    the monitor read it from there, with the same KEK, and roll when it changes."""
    chart = rendered["privacy"]
    reader = chart.get("Deployment", READER)
    monitor = chart.get("Deployment", MONITOR)
    ref = {"name": RELEASE, "key": "privacy-store-url"}
    assert secret_ref(only_container(reader), "AGOGOSML_READER_SUBJECT_KEYS_URL") == ref
    assert secret_ref(only_container(monitor), "AGOGOSML_GDPR_STORE_URL") == ref
    assert secret_text(chart, RELEASE, "privacy-store-url").startswith("postgresql://privacy:")
    reader_kek = env_values(only_container(reader))["AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH"]
    monitor_kek = env_values(only_container(monitor))["AGOGOSML_GDPR_KEK_PATH"]
    assert file_source(reader, reader_kek)[:2] == file_source(monitor, monitor_kek)[:2] == (
        "secret", KEK)
    # the monitor's own events stay in SQLite on its claim
    assert env_values(only_container(monitor))["AGOGOSML_MONITOR_STORE_URL"].startswith(
        "sqlite:")

    def checksums(url: str) -> dict[str, str]:
        rendered_again = helm.template(["privacy"], set_strings={
            "privacy.store.url": url, "secretChecksumSalt": "TESTSECRET-fixed-salt",
            "auth.pipelineToken": "TESTSECRET-fixed-pipeline-token",
            "auth.apiKey.value": "TESTSECRET-fixed-api-key-0001",
            "auth.monitorApiToken": "TESTSECRET-fixed-monitor-token"})
        return {name_of(item): item["spec"]["template"]["metadata"]["annotations"][
            "checksum/secret"] for item in rendered_again.of_kind("Deployment")}
    one = checksums("postgresql://privacy:one@db.example/privacy")
    other = checksums("postgresql://privacy:two@db.example/privacy")
    assert {name for name in one if one[name] != other[name]} == {READER, MONITOR}

    own = helm.template(["privacy"], sets={"privacy.store.url": "",
                                           "privacy.store.existingSecret": "privacy-db"})
    mine = {"name": "privacy-db", "key": "store-url"}
    for name, variable in ((READER, "AGOGOSML_READER_SUBJECT_KEYS_URL"),
                           (MONITOR, "AGOGOSML_GDPR_STORE_URL")):
        assert secret_ref(only_container(own.get("Deployment", name)), variable) == mine
    assert "privacy-store-url" not in own.get("Secret", RELEASE)["data"]


def test_the_policy_given_in_values_is_what_the_reader_parses(
        rendered: dict[str, Rendered]) -> None:
    """privacy: fields added to the demo's policy, one taken out with null."""
    chart = rendered["privacy"]
    policy = Policy.from_yaml(chart.get("ConfigMap", POLICY)["data"]["policy.yaml"])
    assert "name" not in policy.fields
    assert {"customer_id", "email", "phone", "full_name", "iban", "notes"} == set(policy.fields)
    assert policy.fields["iban"].action == "encrypt"
    assert policy.fields["notes"].action == "scan"


def test_the_monitor_rewrites_snapshots_on_the_retraining_claim(
        rendered: dict[str, Rendered]) -> None:
    chart = rendered["privacy"]
    monitor = chart.get("Deployment", MONITOR)
    env = env_values(only_container(monitor))
    snapshots = json.loads(env["AGOGOSML_GDPR_SNAPSHOTS"])
    assert snapshots == ["/datasets/fraud/transactions.csv", "/datasets/fraud/2026-11.jsonl"]
    mount, volume = mounted(monitor)["/datasets"]
    assert volume["persistentVolumeClaim"] == {"claimName": "fraud-training-data"}
    assert not mount.get("readOnly"), "a forget rewrites the snapshots"
    assert all(PurePosixPath(path).is_relative_to("/datasets") for path in snapshots)
    assert (env["AGOGOSML_GDPR_MODEL_NAME"], env["AGOGOSML_GDPR_SHARDS"]) == ("fraud", "4")
    assert env["AGOGOSML_GDPR_SUBJECT_COLUMN"] == "customer_id"


@pytest.mark.parametrize(("sets", "message"), [
    ({"retraining.datasetVolume.existingClaim": "", "retraining.datasetVolume.mountPath": ""},
     "they must be on the retraining data set's claim"),
    ({"retraining.datasetVolume.mountPath": "/training"},
     "privacy.snapshots: /datasets/fraud/transactions.csv is not inside /training"),
    ({"retraining.datasetVolume.mountPath": ""},
     "privacy.snapshots: set retraining.datasetVolume.mountPath"),
    ({"retraining.datasetVolume.mountPath": "/var/lib/agogosml-monitor"},
     "which the monitor needs for itself"),
])
def test_snapshots_the_monitor_cannot_reach_are_refused(helm: Helm, sets: dict[str, str],
                                                        message: str) -> None:
    assert message in fails(helm, "privacy", sets=sets)


# --- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sets", "ok"), [
    ({"privacy.policy.fields.customer_id": "keep"}, False),
    ({"privacy.policy.fields.customer_id": "redact"}, False),
    ({"privacy.policy.fields.customer_id": "null"}, False),  # not named: default keep
    ({"privacy.policy.fields.customer_id": "drop"}, True),
    ({"privacy.policy.fields.customer_id.action": "pseudonymize",
      "privacy.policy.fields.customer_id.prefix": "cust_"}, True),
    ({"privacy.policy.fields.customer_id": "null", "privacy.policy.default": "drop"}, True),
    ({"privacy.policy.fields.customer_id": "keep", "privacy.enabled": "false"}, True),
])
def test_a_policy_that_lets_the_subject_through_is_refused(helm: Helm, sets: dict[str, str],
                                                           ok: bool) -> None:
    """The reader refuses to start with such a policy; the chart refuses to render it."""
    sets = {"inputReader.subjectField": "customer_id", **sets}
    done = helm.template_run(["minimal"], sets=sets)
    assert (done.returncode == 0) is ok, done.stderr
    if not ok:
        assert ("privacy.policy must pseudonymize or drop inputReader.subjectField "
                "customer_id") in done.stderr
    else:
        text = Rendered.parse(done.stdout).find("ConfigMap", POLICY)
        if text is not None:
            policy = Policy.from_yaml(text["data"]["policy.yaml"])
            rule = policy.fields.get("customer_id")
            action = policy.default if rule is None else rule.action
            assert action in ("pseudonymize", "drop")


@pytest.mark.parametrize(("sets", "message"), [
    ({"privacy.store.url": "sqlite:////data/privacy.db"}, "at '/privacy/store/url'"),
    ({"privacy.policy.fields.name": "hide"}, "at '/privacy/policy/fields/name'"),
    ({"privacy.policy.fields.card.action": "shred"}, "at '/privacy/policy/fields/card"),
    ({"privacy.policy.default": "redact"}, "at '/privacy/policy/default'"),
    ({"privacy.snapshots[0]": "datasets/t.csv"}, "at '/privacy/snapshots/0'"),
    ({"privacy.shards": "300"}, "at '/privacy/shards'"),
    ({"privacy.keyring.name": "x"}, "at '/privacy/keyring': additional properties 'name'"),
    ({"privacy.enable": "false"}, "at '/privacy': additional properties 'enable'"),
])
def test_schema_rejects_bad_privacy_values(helm: Helm, sets: dict[str, str],
                                           message: str) -> None:
    error = fails(helm, "minimal", sets=sets)
    assert "don't meet the specifications of the schema" in error
    assert message in error


def test_a_store_given_twice_is_refused(helm: Helm) -> None:
    assert "set either privacy.store.url or privacy.store.existingSecret, not both" in fails(
        helm, "privacy", sets={"privacy.store.existingSecret": "privacy-db"})


# --- off ----------------------------------------------------------------------------------


def test_disabling_privacy_removes_it_everywhere(helm: Helm) -> None:
    for values in ("minimal", "privacy"):
        chart = helm.template([values], sets={"privacy.enabled": "false"})
        assert not [item for item in chart.objects if "privacy" in name_of(item)], values
        assert "privacy-store-url" not in (chart.get("Secret", RELEASE)["data"])
        for name in (READER, MONITOR):
            workload = chart.get("Deployment", name)
            container = only_container(workload)
            assert not [variable for variable in env_of(container)
                        if variable in READER_PRIVACY_ENV or "GDPR" in variable], name
            assert not [mount for mount in container["volumeMounts"]
                        if "privacy" in mount["name"] or mount["name"] == "snapshots"], name
            assert "checksum/privacy-policy" not in workload["spec"]["template"]["metadata"][
                "annotations"]
        assert not netpol_database(chart), values


# --- who may reach the database -------------------------------------------------------------


def netpol_database(chart: Rendered) -> set[str]:
    """The components that may reach the database in 10.20.0.5 on 5432."""
    rules = [{**item, "metadata": {**item["metadata"], "namespace": NAMESPACE}}
             for item in chart.of_kind("NetworkPolicy")]
    return {pod.labels["app.kubernetes.io/component"]
            for pod in netpol.pods_of(chart.objects, NAMESPACE)
            if netpol.allowed(rules, pod, DATABASE, 5432)}


def test_the_reader_and_monitor_reach_the_privacy_store_and_no_one_else(
        rendered: dict[str, Rendered]) -> None:
    assert netpol_database(rendered["privacy"]) == {"input-reader", "monitor"}
    assert netpol_database(rendered["existing-secret"]) == {"input-reader", "monitor"}
    assert netpol_database(rendered["minimal"]) == set()  # no database
    chart = rendered["privacy"]  # networkPolicy.database.to: 10.20.0.0/24 only
    rules = [{**item, "metadata": {**item["metadata"], "namespace": NAMESPACE}}
             for item in chart.of_kind("NetworkPolicy")]
    for pod in netpol.pods_of(chart.objects, NAMESPACE):
        assert not netpol.allowed(rules, pod, ELSEWHERE, 5432), pod.name


# --- NOTES.txt ----------------------------------------------------------------------------


def test_notes_say_where_the_keys_are_and_how_to_forget(helm: Helm, tmp_path: Path) -> None:
    notes = helm.notes(tmp_path / "minimal", ["minimal"])
    assert f"PII policy in ConfigMap {POLICY}" in notes
    assert f"Secret {KEYRING} (keyring.yaml)" in notes
    assert f"Secret {KEK} (kek.yaml)" in notes
    assert "agogosml gdpr keygen > keyring.yaml" in notes
    assert "Subject keys: off (no privacy store)" in notes
    assert "/v1/gdpr/forget" in notes
    assert "/v1/gdpr/lineage/<pseudonym>" in notes
    stored = helm.notes(tmp_path / "privacy", ["privacy"])
    assert f"Subject keys: in the privacy store (Secret {RELEASE}, key privacy-store-url)" \
        in stored
    own = helm.notes(tmp_path / "existing", ["existing-secret"])
    assert "agogosml gdpr keygen" not in own  # the operator's Secrets: nothing generated
    off = helm.notes(tmp_path / "off", ["minimal"], sets={"privacy.enabled": "false"})
    assert "Privacy" not in off


def test_no_kek_while_no_pod_mounts_it(helm: Helm, tmp_path: Path) -> None:
    """Without the monitor and without a privacy store, nothing wraps subject keys."""
    chart = helm.template(["minimal"], sets={"monitor.enabled": "false"})
    assert chart.find("Secret", KEK) is None
    assert chart.find("Secret", KEYRING) is not None
    assert "kek" not in json.dumps(chart.get("Deployment", READER))
    notes = helm.notes(tmp_path, ["minimal"], sets={"monitor.enabled": "false"})
    assert KEYRING in notes
    assert KEK not in notes
    stored = helm.template(["privacy"], sets={"monitor.enabled": "false"})
    assert stored.find("Secret", KEK) is not None
    reader = env_values(only_container(stored.get("Deployment", READER)))
    assert reader["AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH"].endswith("/kek.yaml")
