"""Configuration: names, precedence, derived defaults, refusal of bad values."""
import pytest

from tasks import versions
from tasks.core import config
from tasks.core.errors import LabError

MAKEFILE_VARS = ["CLUSTER_NAME", "K8S_VERSION", "KIND_NODE_IMAGE", "KUBE_CONTEXT", "CREATE_WAIT", "KIND_CONFIG",
                 "HPA_DURATION", "HPA_CONCURRENCY", "HPA_PAUSE", "HPA_NAMESPACE", "GITHUB_USER", "GITHUB_REPO"]


def test_every_makefile_variable_is_a_setting():
    assert set(MAKEFILE_VARS) <= set(config.NAMES)


def test_defaults_work_together():
    cfg = config.load({}, {})
    assert cfg.REGISTRY_PORT == "5001"  # kind's advice; 5000 is AirPlay on macOS
    # the pinned version's node image by digest beside its tag (kind v0.32.0's default for v1.36.1)
    assert cfg.KIND_NODE_IMAGE == f"kindest/node:{versions.K8S_VERSION}@{versions.KIND_NODE_IMAGE_DIGEST}"
    assert versions.KIND_NODE_IMAGE_DIGEST == "sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
    assert cfg.KUBE_CONTEXT == "kind-gitops-lab"
    assert cfg.FLUX_VERSION == versions.FLUX_VERSION
    major, minor = (int(x) for x in versions.K8S_VERSION.lstrip("v").split(".")[:2])
    assert (major, minor) >= (1, 33)  # flux check --pre
    assert not cfg.KIND_NODE_IMAGE.endswith(":latest")


def test_precedence_cli_over_env_over_default():
    cfg = config.load({"CLUSTER_NAME": "from-cli"}, {"CLUSTER_NAME": "from-env", "REGISTRY_PORT": "5055"})
    assert cfg.CLUSTER_NAME == "from-cli" and cfg.sources["CLUSTER_NAME"] == "command line"
    assert cfg.REGISTRY_PORT == "5055" and cfg.sources["REGISTRY_PORT"] == "environment"
    assert cfg.sources["K8S_VERSION"] == "default"
    # derived defaults follow the values they derive from
    assert cfg.KUBE_CONTEXT == "kind-from-cli"


@pytest.mark.parametrize("name,value,fragment", [
    ("CLUSTER_NAME", "My_Cluster", "lowercase"),
    ("CLUSTER_NAME", "-lead", "lowercase"),
    ("REGISTRY_PORT", "abc", "1 to 65535"),
    ("REGISTRY_PORT", "0", "1 to 65535"),
    ("REGISTRY_PORT", "65536", "1 to 65535"),
    ("HPA_DURATION", "ten", "seconds"),
    ("HPA_CONCURRENCY", "0", "at least 1"),
    ("CREATE_WAIT", "soon", "duration"),
    ("GITOPS_SOURCE", "svn", "oci, git"),
    ("K8S_VERSION", "v1.29.2", "1.34"),
    ("K8S_VERSION", "v1.33.4", "metrics-server v0.9.0 supports Kubernetes 1.34+"),
    ("KIND_NODE_IMAGE", "kindest/node:latest", "not :latest"),
    ("HPA_NAMESPACE", "qa", "dev, staging, production"),
    # postBuild.substituteStrategy: kustomize-controller v1.9.0, Flux 2.9
    ("FLUX_VERSION", "2.8.3", "substituteStrategy"),
    ("FLUX_VERSION", "v2.8.0", "2.9.0 or newer"),
])
def test_invalid_values_are_refused_with_one_line(name, value, fragment):
    with pytest.raises(LabError) as err:
        config.load({name: value}, {})
    line = err.value.line()
    assert "\n" not in line
    assert name in line and repr(value) in line and fragment in line


def test_unknown_command_line_variable_is_refused():
    with pytest.raises(LabError, match="unknown variable CLUSTERNAME"):
        config.load({"CLUSTERNAME": "x"}, {})


def test_empty_environment_value_means_default():
    assert config.load({}, {"REGISTRY_PORT": ""}).REGISTRY_PORT == "5001"


def test_the_oldest_flux_the_lab_supports_is_accepted():
    assert config.load({"FLUX_VERSION": "v2.9.0"}, {}).FLUX_VERSION == "2.9.0"


def test_node_image_digest_only_for_the_pinned_version_and_a_tag_alone_is_taken_as_is():
    # another Kubernetes version: its digest is not pinned here, so the tag alone
    assert config.load({"K8S_VERSION": "v1.35.2"}, {}).KIND_NODE_IMAGE == "kindest/node:v1.35.2"
    # a locally built stand-in has no registry digest: KIND_NODE_IMAGE with a tag alone is used unchanged
    cfg = config.load({}, {"KIND_NODE_IMAGE": "kindest/node:v1.36.1"})
    assert cfg.KIND_NODE_IMAGE == "kindest/node:v1.36.1" and cfg.sources["KIND_NODE_IMAGE"] == "environment"
