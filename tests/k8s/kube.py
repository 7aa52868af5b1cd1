"""A real Kubernetes API server for tests: etcd plus kube-apiserver on free loopback
ports, no kubelet and no controller manager. scripts/fetch-kube.sh builds or installs
both binaries into a cache outside the clone.

What is real: the API, its validation and defaulting, admission, server-side apply and
dry-run, RBAC, status subresources, ClusterIP allocation. What is not: nothing schedules
or runs Pods, and no controller acts on objects (a Deployment never gets a ReplicaSet; a
deleted Namespace stays Terminating), so tests set status themselves where they need it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError

from agogosml.localstack.broker import free_port

KUBE_FIXTURES = frozenset({"kube_cluster", "kubeconfig", "api_client", "namespace"})
"""The fixtures of tests/k8s/fixtures.py: a test asking for one uses the API server."""

REPO = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO / "scripts" / "fetch-kube.sh"
FIELD_MANAGER = "agogosml-tests"
SERVICE_CIDR = "10.96.0.0/24"  # only allocated from by the API server, never routed


@dataclass(frozen=True)
class KubeBinaries:
    etcd: Path
    kube_apiserver: Path


def fetch_binaries(timeout_s: float = 1800.0) -> KubeBinaries:
    """Run scripts/fetch-kube.sh (instant when cached; a first build takes minutes)."""
    done = subprocess.run([str(FETCH_SCRIPT)], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/fetch-kube.sh failed ({done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return KubeBinaries(Path(found["ETCD"]), Path(found["KUBE_APISERVER"]))


@dataclass(frozen=True)
class KubeCluster:
    """A running API server and how to reach it as cluster admin."""

    server: str  # https://127.0.0.1:PORT
    kubeconfig: Path
    ca_cert: Path
    token: str
    workdir: Path

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))


# --- certificates and keys --------------------------------------------------------------

def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_pki(pki: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the
    service-account token signing key pair."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agogosml-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        "ca.crt": ca_cert.public_bytes(serialization.Encoding.PEM),
        "apiserver.crt": serving_cert.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(serving_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    pki.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in files.items():
        path = pki / name
        path.write_bytes(data)
        path.chmod(0o600)
        paths[name] = path
    return paths


# --- processes ---------------------------------------------------------------------------

@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def _wait_ready(name: str, proc: subprocess.Popen[bytes], log: Path, url: str,
                http: httpx.Client, timeout_s: float) -> None:
    """Poll url until it answers 200, failing early if the process exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            answer = http.get(url, timeout=2.0)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code}: {answer.text[-1500:]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready at {url} after {timeout_s}s ({last}):\n"
                               f"{_tail(log)}")
        time.sleep(0.1)  # polling the readiness endpoint


def _start_etcd(stack: ExitStack, etcd: Path, workdir: Path, timeout_s: float) -> str:
    client_url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    log = workdir / "etcd.log"
    proc = stack.enter_context(_process([
        str(etcd), "--name=test",
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=test={peer_url}",
        "--log-level=warn",
    ], log))
    with httpx.Client() as http:
        _wait_ready("etcd", proc, log, f"{client_url}/health", http, timeout_s)
    return client_url


def _write_kubeconfig(path: Path, server: str, ca_cert: Path, token: str) -> None:
    # JSON is YAML, so every kubeconfig reader takes it.
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server,
                                                  "certificate-authority": str(ca_cert)}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin",
                                                  "namespace": "default"}}],
        "current-context": "test",
    }
    path.write_text(json.dumps(kubeconfig, indent=2))
    path.chmod(0o600)


@contextmanager
def run_cluster(workdir: Path, binaries: KubeBinaries | None = None,
                timeout_s: float = 90.0) -> Iterator[KubeCluster]:
    """etcd and kube-apiserver on free loopback ports; admin is a static bearer token in
    system:masters and authorization is RBAC, as on a real cluster."""
    binaries = binaries or fetch_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = _write_pki(workdir / "pki")
    token = secrets.token_urlsafe(24)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{token},admin,admin,"system:masters"\n')
    tokens.chmod(0o600)
    with ExitStack() as stack:
        etcd_url = _start_etcd(stack, binaries.etcd, workdir, timeout_s)
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        log = workdir / "kube-apiserver.log"
        proc = stack.enter_context(_process([
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={workdir / 'certs'}",
            f"--tls-cert-file={pki['apiserver.crt']}",
            f"--tls-private-key-file={pki['apiserver.key']}",
            f"--token-auth-file={tokens}",
            "--anonymous-auth=false",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki['sa.pub']}",
            f"--service-account-signing-key-file={pki['sa.key']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
        ], log))
        context = ssl.create_default_context(cafile=str(pki["ca.crt"]))
        with httpx.Client(verify=context,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            _wait_ready("kube-apiserver", proc, log, f"{server}/readyz", http, timeout_s)
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server, pki["ca.crt"], token)
        yield KubeCluster(server, kubeconfig, pki["ca.crt"], token, workdir)


# --- applying manifests --------------------------------------------------------------------

class ManifestRejected(Exception):
    """The API server refused an object; the message is the server's own."""

    def __init__(self, obj: dict[str, Any], status: int, reason: str, message: str) -> None:
        self.kind = str(obj.get("kind"))
        self.name = str(obj.get("metadata", {}).get("name"))
        self.status = status
        self.reason = reason
        self.server_message = message
        super().__init__(f"{self.kind}/{self.name} rejected ({status} {reason}): {message}")


_dynamic_clients: weakref.WeakKeyDictionary[client.ApiClient, DynamicClient] = (
    weakref.WeakKeyDictionary())


def _dynamic(api_client: client.ApiClient) -> DynamicClient:
    """One dynamic client per ApiClient; its discovery cache file lives in a temporary
    folder that is removed when the ApiClient is collected (or at exit)."""
    dyn = _dynamic_clients.get(api_client)
    if dyn is None:
        cache_dir = tempfile.mkdtemp(prefix="agogosml-discovery-")
        weakref.finalize(api_client, shutil.rmtree, cache_dir, ignore_errors=True)
        dyn = DynamicClient(api_client, cache_file=str(Path(cache_dir) / "discovery.json"))
        _dynamic_clients[api_client] = dyn
    return dyn


def apply_manifests(api_client: client.ApiClient, objects: list[dict[str, Any]],
                    namespace: str, dry_run: bool) -> list[dict[str, Any]]:
    """Server-side apply each object in order (namespaced ones into `namespace` unless
    they name their own), with strict field validation, as `kubectl apply --server-side
    [--dry-run=server]` would. Returns the objects as the server stored (or, on a dry
    run, would store) them. Raises ManifestRejected with the server's message on the
    first object it refuses: 422 Invalid for a bad value, and (a quirk of server-side
    apply) 500 "field not declared in schema" for an unknown field."""
    dyn = _dynamic(api_client)
    applied = []
    for obj in objects:
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        target_ns = obj.get("metadata", {}).get("namespace") or namespace
        try:
            result = resource.server_side_apply(
                body=obj,
                namespace=target_ns if resource.namespaced else None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All" if dry_run else None,
                query_params=[("fieldValidation", "Strict")],
            )
        except DynamicApiError as exc:
            try:
                body = json.loads(exc.body)
            except (TypeError, ValueError):
                body = {}
            raise ManifestRejected(obj, int(exc.status), str(body.get("reason", exc.reason)),
                                   str(body.get("message", exc.body))) from exc
        applied.append(result.to_dict())
    return applied


def mark_deployment_ready(api_client: client.ApiClient, namespace: str, name: str) -> Any:
    """Stand in for the kubelet and controllers: set the Deployment's status as if all of
    its replicas were up, ready and available. Returns the updated V1Deployment."""
    apps = client.AppsV1Api(api_client)
    deployment = apps.read_namespaced_deployment(name, namespace)
    replicas = deployment.spec.replicas
    status = {
        "observedGeneration": deployment.metadata.generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{
            "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        }],
    }
    return apps.patch_namespaced_deployment_status(name, namespace, {"status": status})
