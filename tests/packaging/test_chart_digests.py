"""The chart's helm-test image can be pinned by digest, as the service images' base can.

`tests.image.digest` (optional) makes the test pod pull `<registry>/<repository>:<tag>@<digest>`;
the schema takes only a sha256 digest or nothing.
"""

from __future__ import annotations

import pytest

from tests.packaging.helm import Helm, Manifest

pytestmark = pytest.mark.timeout(1_200)  # builds Helm the first time

DIGEST = "sha256:" + "0123456789abcdef" * 4


def helm_test_images(helm: Helm, sets: dict[str, str]) -> list[str]:
    chart = helm.template(["minimal"], sets=sets)
    (pod,) = chart.of_kind("Pod")
    spec: Manifest = pod["spec"]
    return [c["image"] for c in spec["initContainers"] + spec["containers"]]


def test_test_pod_is_pinned_by_tag_alone_by_default(helm: Helm) -> None:
    images = helm_test_images(helm, {})
    assert images == ["docker.io/curlimages/curl:8.11.1"] * 2


def test_test_pod_is_pinned_by_digest_when_one_is_given(helm: Helm) -> None:
    images = helm_test_images(helm, {"tests.image.digest": DIGEST})
    assert images == [f"docker.io/curlimages/curl:8.11.1@{DIGEST}"] * 2


@pytest.mark.parametrize("digest", ["sha256:abc", "latest", "md5:" + "0" * 32,
                                    "sha256:" + "A" * 64])
def test_schema_takes_only_a_sha256_digest(helm: Helm, digest: str) -> None:
    done = helm.template_run(["minimal"], sets={"tests.image.digest": digest})
    assert done.returncode != 0
    assert "at '/tests/image/digest'" in done.stderr
