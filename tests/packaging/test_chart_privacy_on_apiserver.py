"""The privacy keys the chart generates, on a real API server with a real helm: made once
at install, looked up and kept by every upgrade (new keys would change every pseudonym),
left behind by an uninstall and found again by the next install.

What the chart renders for privacy is in tests/packaging/test_chart_privacy.py; every
object of the privacy values file is dry-run applied with the rest of the matrix in
tests/packaging/test_chart_on_apiserver.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from agogosml.privacy.keys import Keyring
from tests.packaging.helm import CHART, Helm, values_file

pytestmark = pytest.mark.timeout(600)

RELEASE = "agogosml"  # contains the chart's name, so it is also the fullname
KEYS = {f"{RELEASE}-privacy-keyring": "keyring.yaml", f"{RELEASE}-privacy-kek": "kek.yaml"}


def privacy_keys(api_client: client.ApiClient, namespace: str) -> dict[str, str]:
    """Secret name -> its keyring file, as stored."""
    core = client.CoreV1Api(api_client)
    found = {}
    for name, key in KEYS.items():
        secret = core.read_namespaced_secret(name, namespace)
        found[name] = base64.b64decode(secret.data[key]).decode()
    return found


def generations(api_client: client.ApiClient, namespace: str) -> dict[str, int]:
    return {item.metadata.name: item.metadata.generation
            for item in client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items}


def test_generated_keys_survive_upgrades_and_a_reinstall(
        helm: Helm, kubeconfig: Path, api_client: client.ApiClient, namespace: str,
        tmp_path: Path) -> None:
    cluster = helm.on_cluster(kubeconfig, tmp_path / "helm")
    install = ("install", RELEASE, str(CHART), "--namespace", namespace,
               "--values", str(values_file("minimal")))
    cluster.check(*install)
    installed = privacy_keys(api_client, namespace)
    for name, text in installed.items():
        path = tmp_path / KEYS[name]
        path.write_text(text)
        assert Keyring.from_file(path).current_key_id is not None, name
    assert installed[f"{RELEASE}-privacy-keyring"] != installed[f"{RELEASE}-privacy-kek"]

    # An upgrade that changes the policy: the keys stay, only the reader rolls.
    before = generations(api_client, namespace)
    cluster.check("upgrade", RELEASE, str(CHART), "--namespace", namespace, "--reuse-values",
                  "--set", "privacy.policy.fields.iban=encrypt")
    after = generations(api_client, namespace)
    assert {name for name in after if after[name] != before[name]} == {
        f"{RELEASE}-input-reader"}
    assert privacy_keys(api_client, namespace) == installed
    # One that changes nothing of theirs.
    cluster.check("upgrade", RELEASE, str(CHART), "--namespace", namespace, "--reuse-values",
                  "--set", "productionSlot=blue")
    assert privacy_keys(api_client, namespace) == installed

    # Uninstall: the keys are left behind (helm.sh/resource-policy: keep), the chart's
    # other Secret is not; a new install finds them and keeps them.
    cluster.check("uninstall", RELEASE, "--namespace", namespace)
    assert privacy_keys(api_client, namespace) == installed
    with pytest.raises(ApiException) as gone:
        client.CoreV1Api(api_client).read_namespaced_secret(RELEASE, namespace)
    assert gone.value.status == 404
    cluster.check(*install)
    assert privacy_keys(api_client, namespace) == installed
