"""hack/engine/runc-wrapper (sandbox test tooling): what it changes in a container's OCI spec.

The host's CA reaches builds only as a read-only bind under the container's own /dev tmpfs, with
PIP_CERT pointing at it: never a path in the image's root filesystem, so no build layer can hold it."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest

WRAPPER = Path(__file__).resolve().parents[2] / "hack" / "engine" / "runc-wrapper"


@pytest.fixture
def wrapper(tmp_path, monkeypatch):
    ca = tmp_path / "host-ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("LAB_HOST_CA", str(ca))
    loader = importlib.machinery.SourceFileLoader("runc_wrapper", str(WRAPPER))
    spec = importlib.util.spec_from_loader("runc_wrapper", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    module.ca = ca
    return module


def spec_file(tmp_path, mounts, env=("PATH=/usr/bin",)) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"process": {"env": list(env)}, "mounts": mounts}))
    return path


DOCKER_MOUNTS = [{"destination": "/proc", "type": "proc", "source": "proc"},
                 {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}]


def test_the_ca_is_bound_read_only_under_dev_after_its_tmpfs_and_pip_is_pointed_at_it(wrapper, tmp_path):
    path = spec_file(tmp_path, DOCKER_MOUNTS)
    wrapper.edit(str(path), wrapper.add_host_ca)
    spec = json.loads(path.read_text())
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.index("/dev/gitops-lab-host-ca.crt") > dests.index("/dev")  # made in the tmpfs, not the image
    bind = spec["mounts"][dests.index("/dev/gitops-lab-host-ca.crt")]
    assert bind["source"] == str(wrapper.ca) and bind["type"] == "bind" and "ro" in bind["options"]
    assert "PIP_CERT=/dev/gitops-lab-host-ca.crt" in spec["process"]["env"]
    # a second start of the same bundle changes nothing more
    wrapper.edit(str(path), wrapper.add_host_ca)
    assert json.loads(path.read_text()) == spec


def test_without_a_dev_tmpfs_or_without_the_ca_nothing_is_added(wrapper, tmp_path):
    path = spec_file(tmp_path, DOCKER_MOUNTS[:1])
    before = path.read_text()
    wrapper.edit(str(path), wrapper.add_host_ca)
    assert path.read_text() == before  # the mount point would be made in the image's root filesystem
    wrapper.ca.unlink()
    path = spec_file(tmp_path, DOCKER_MOUNTS)
    before = path.read_text()
    wrapper.edit(str(path), wrapper.add_host_ca)
    assert path.read_text() == before


def test_a_pip_cert_the_image_sets_is_kept(wrapper, tmp_path):
    path = spec_file(tmp_path, DOCKER_MOUNTS, env=("PIP_CERT=/etc/mine.pem",))
    wrapper.edit(str(path), wrapper.add_host_ca)
    assert [e for e in json.loads(path.read_text())["process"]["env"] if e.startswith("PIP_CERT=")] == \
        ["PIP_CERT=/etc/mine.pem"]


def test_one_edit_drops_the_missing_capabilities_and_adds_the_ca(wrapper, tmp_path, monkeypatch):
    monkeypatch.setattr(wrapper, "bounding_set", lambda: {"CAP_CHOWN", "CAP_SYS_ADMIN"})
    path = tmp_path / "config.json"
    caps = ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"]
    path.write_text(json.dumps({"process": {"env": [], "capabilities": {"bounding": caps, "effective": caps}},
                                "mounts": DOCKER_MOUNTS}))
    wrapper.edit(str(path), wrapper.strip(("process", "capabilities")), wrapper.add_host_ca)
    spec = json.loads(path.read_text())
    assert spec["process"]["capabilities"] == {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
                                               "effective": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}
    assert "PIP_CERT=/dev/gitops-lab-host-ca.crt" in spec["process"]["env"]
    # an exec's --process file: the capabilities at its top level
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"capabilities": {"ambient": caps}}))
    wrapper.edit(str(proc), wrapper.strip(("capabilities",)))
    assert json.loads(proc.read_text()) == {"capabilities": {"ambient": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}}
