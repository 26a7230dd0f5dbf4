"""The tool wrapper: lazy binaries, clear errors, timeouts, dry run, secrets."""
import os
import stat
import subprocess
import sys

import pytest

from tasks.core import config, tools
from tasks.core.errors import LabError


def script(dirpath, name, body):
    path = dirpath / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def make(tmp_path, **settings):
    return tools.Tools(config.load(settings, {}), echo=False)


def test_import_works_without_binaries(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", "import tasks.core.tools, tasks.core.config; print('ok')"],
                         env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip() == "ok", out.stderr


def test_missing_binary_names_it_with_version_and_install_page(tmp_path):
    t = make(tmp_path, KIND=str(tmp_path / "nope"))  # the default node is Kubernetes 1.36
    with pytest.raises(LabError) as err:
        t.probe("kind", "version")
    line = err.value.line()
    assert "kind not found" in line and ">= 0.32.0" in line and "kind.sigs.k8s.io" in line
    t = make(tmp_path, KIND=str(tmp_path / "nope"), K8S_VERSION="v1.35.2")
    with pytest.raises(LabError, match=r">= 0\.27\.0"):
        t.probe("kind", "version")


@pytest.mark.parametrize("node, kind_version, refused", [
    ("v1.36.1", "0.31.0", True), ("v1.36.1", "0.32.0", False), ("v1.37.0", "0.31.9", True),
    ("v1.35.2", "0.31.0", False), ("v1.35.2", "0.26.0", True)])
def test_kind_floor_follows_the_node_version(tmp_path, node, kind_version, refused):
    kind = script(tmp_path, "kind", f"print('kind v{kind_version} go1.25 linux/amd64')")
    t = make(tmp_path, KIND=kind, K8S_VERSION=node)
    if not refused:
        assert t.check_version("kind") == kind_version
        return
    with pytest.raises(LabError) as err:
        t.check_version("kind")
    line = err.value.line()
    assert line.count("\n") == 0 and f"kind {kind_version} is too old" in line
    if node >= "v1.36":
        assert "kubeadm.k8s.io/v1beta3" in line and ">= 0.32.0" in line and "K8S_VERSION=v1.35.x" in line


def test_kind_floor_reads_the_node_image_tag_first(tmp_path):
    kind = script(tmp_path, "kind", "print('kind v0.31.0 go1.25 linux/amd64')")
    t = make(tmp_path, KIND=kind, K8S_VERSION="v1.35.2", KIND_NODE_IMAGE="kindest/node:v1.36.1")
    with pytest.raises(LabError, match="v1beta3"):
        t.check_version("kind")


def test_too_old_version_is_refused(tmp_path):
    kind = script(tmp_path, "kind", "print('kind v0.20.0 go1.20 linux/amd64')")
    with pytest.raises(LabError, match="kind 0.20.0 is too old"):
        make(tmp_path, KIND=kind).check_version("kind")


def test_failure_carries_command_exit_code_and_stderr_tail(tmp_path):
    kind = script(tmp_path, "kind", "import sys\nsys.stderr.write('\\n'.join(f'line {i}' for i in range(20)))\n"
                                    "sys.exit(3)")
    with pytest.raises(LabError) as err:
        make(tmp_path, KIND=kind).mutate("kind", "create", "cluster")
    line = err.value.line()
    assert "`kind create cluster` failed with exit code 3" in line
    assert "line 19" in line and "line 0 " not in line


def test_timeout_becomes_a_clear_error(tmp_path):
    kind = script(tmp_path, "kind", "import time\ntime.sleep(10)")
    with pytest.raises(LabError, match="did not finish within 1s"):
        make(tmp_path, KIND=kind).probe("kind", "get", "clusters", timeout=1)


def test_dry_run_runs_no_mutating_command_but_probes(tmp_path):
    marker = tmp_path / "ran"
    kind = script(tmp_path, "kind", f"open({str(marker)!r}, 'a').write('x')\nprint('gitops-lab')")
    t = make(tmp_path, KIND=kind, DRY_RUN="1")
    t.mutate("kind", "create", "cluster")
    assert not marker.exists()
    assert t.planned == ["kind create cluster"]
    assert t.probe("kind", "get", "clusters").out.strip() == "gitops-lab"
    assert marker.exists()


def test_secrets_are_echoed_as_stars(tmp_path, capsys):
    flux = script(tmp_path, "flux", "import sys\nprint(sys.argv[-1])")
    t = tools.Tools(config.load({"FLUX": flux}, {}), echo=True)
    res = t.probe("flux", "push", tools.Secret("--creds=me:hunter2"))
    assert res.out.strip() == "--creds=me:hunter2"
    assert "hunter2" not in capsys.readouterr().out


def test_a_flux_cli_without_substitute_strategy_is_refused_saying_why(tmp_path):
    flux = script(tmp_path, "flux", "print('flux: v2.8.5')")
    with pytest.raises(LabError) as err:
        make(tmp_path, FLUX=flux).check_version("flux")
    line = err.value.line()
    assert "flux 2.8.5 is too old" in line and "substituteStrategy" in line and ">= 2.9.0" in line
    ok = script(tmp_path, "flux", "print('flux: v2.9.0')")
    assert make(tmp_path, FLUX=ok).check_version("flux") == "2.9.0"


@pytest.mark.parametrize("node, kubectl_version, problem", [
    ("v1.36.1", "1.36.1", None), ("v1.36.1", "1.35.0", None), ("v1.36.1", "1.37.2", None),
    ("v1.36.1", "1.34.9", "too old"), ("v1.36.1", "1.38.0", "does not match the kind nodes"),
    ("v1.35.2", "1.34.0", None), ("v1.34.0", "1.33.1", None), ("v1.36.1", "1.32.4", "too old")])
def test_kubectl_within_one_minor_of_the_nodes(tmp_path, node, kubectl_version, problem):
    doc = '{"clientVersion": {"gitVersion": "v%s"}}' % kubectl_version
    kubectl = script(tmp_path, "kubectl", f"print({doc!r})")
    t = make(tmp_path, KUBECTL=kubectl, K8S_VERSION=node)
    if problem is None:
        assert t.check_version("kubectl") == kubectl_version
        return
    with pytest.raises(LabError) as err:
        t.check_version("kubectl")
    line = err.value.line()
    assert problem in line and "skew" in line and "\n" not in line
