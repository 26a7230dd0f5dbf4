"""What `verify` (and `check_flux`) find after a hand-made breakage, said in one line whose advice,
followed literally, repairs the lab (issue 24 items 8, 10, 11, 12), against the fakes.

`doit -s verify` runs verify alone (without its dependency on sync), as a user sees it after the
breakage; `doit setup` is the same check after sync's reality check had its say."""
from __future__ import annotations

import re
import subprocess

from tasks.core import names
from tests.graph.conftest import has

CTX = "kind-gitops-lab"
KS = "kustomizations.kustomize.toolkit.fluxcd.io"


def kubectl(lab, *args: str) -> subprocess.CompletedProcess:
    proc = lab.world.run("kubectl", "--context", CTX, *args, env=lab.env())
    assert proc.returncode == 0, proc.stderr
    return proc


def one_line_failure(proc: subprocess.CompletedProcess) -> str:
    """The run failed with one ✗ line (what — why — what to do) and no traceback; that line."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith("✗ ") and " — " in line]
    assert lines, proc.stdout + proc.stderr
    assert lines[0].count(" — ") >= 2, lines[0]
    return lines[0]


def advice(line: str) -> str:
    """The first `doit …` command the line's advice names."""
    found = re.search(r"`(doit [^`]+)`", line.rsplit(" — ", 1)[1])
    assert found, line
    return found.group(1)


def follow(lab, line: str) -> subprocess.CompletedProcess:
    words = advice(line).split()[1:]
    proc = lab.doit(*words)
    assert proc.returncode == 0, f"followed `{' '.join(words)}` from: {line}\n{proc.stdout}{proc.stderr}"
    return proc


def verified(lab) -> None:
    proc = lab.doit("-s", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("200 200 200") == len(names.ENVIRONMENTS)


# --- item 8: the Kustomizations Flux readiness expects, by name ------------------------------------

def test_a_deleted_kustomization_is_named_and_doit_sync_brings_it_back(built):
    lab = built
    kubectl(lab, "-n", names.FLUX_NAMESPACE, "delete", KS, "apps-dev")
    for command in (("check_flux",), ("-s", "verify")):
        line = one_line_failure(lab.doit(*command))
        # every other Flux object is Ready: they must not stand in for the missing one
        assert line.startswith("✗ Kustomization/flux-system/apps-dev does not exist"), line
        assert advice(line) == "doit sync"
    follow(lab, line)
    verified(lab)
    assert lab.doit("check_flux").returncode == 0


# --- item 12: a suspended Kustomization, said before sync reconciles ------------------------------

def test_setup_after_flux_suspend_says_what_verify_says_and_flux_resume_repairs_it(built):
    lab = built
    assert lab.doit("flux_suspend").returncode == 0
    verify_line = one_line_failure(lab.doit("-s", "verify"))
    # a manifest edit: sync has to publish and reconcile
    overlay = lab.root / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "# an edit\n")
    lab.world.clear_calls()
    proc = lab.doit("setup")
    line = one_line_failure(proc)
    assert "▶ sync" in proc.stdout and "resource is suspended" not in proc.stdout + proc.stderr
    what = line.split(" — ")[0]
    assert what.endswith(" are suspended"), line
    assert all(f"Kustomization/flux-system/{ks}" in what for ks in names.FLUX_KUSTOMIZATIONS), line
    # said before anything changed: nothing published, applied or reconciled
    assert lab.mutating() == [], lab.mutating()
    assert advice(line) == advice(verify_line) == "doit flux_resume"
    follow(lab, line)
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "▶ sync" in proc.stdout and proc.stdout.count("200 200 200") == len(names.ENVIRONMENTS)


# --- item 10: lab-vars deleted by hand -------------------------------------------------------------

def lab_vars(lab, name: str = "lab-vars") -> dict | None:
    return next((o for o in lab.world.objects("gitops-lab", "ConfigMap", names.FLUX_NAMESPACE)
                 if o["metadata"]["name"] == name), None)


def test_setup_notices_lab_vars_deleted_by_hand_and_restores_it(built):
    lab = built
    image = lab_vars(lab)["data"]["APP_IMAGE"]
    kubectl(lab, "-n", names.FLUX_NAMESPACE, "delete", "configmap", "lab-vars")
    line = one_line_failure(lab.doit("-s", "verify"))
    assert line.startswith("✗ ConfigMap flux-system/lab-vars does not exist — ") and "default image" in line, line
    assert advice(line) == "doit sync"
    lab.world.clear_calls()
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "▶ sync" in proc.stdout and proc.stdout.count("200 200 200") == len(names.ENVIRONMENTS)
    assert lab_vars(lab)["data"]["APP_IMAGE"] == image
    assert not has(lab.mutating(), "flux push artifact", "docker push", "docker build")  # nothing else redone
    lab.world.clear_calls()
    assert lab.doit("setup").returncode == 0 and lab.mutating() == []  # and then up to date again


def test_a_pinned_environments_lab_vars_deleted_by_hand_is_restored_by_sync(built):
    lab = built
    proc = lab.doit("setup", WATCH_ENVS="dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kubectl(lab, "-n", names.FLUX_NAMESPACE, "delete", "configmap", "lab-vars-staging")
    line = one_line_failure(lab.doit("-s", "verify", WATCH_ENVS="dev"))
    assert line.startswith("✗ no ConfigMap lab-vars-staging for staging — "), line
    assert advice(line) == "doit sync"
    proc = lab.doit("sync", WATCH_ENVS="dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "▶ sync" in proc.stdout and lab_vars(lab, "lab-vars-staging")["data"]["APP_IMAGE"]
    proc = lab.doit("-s", "verify", WATCH_ENVS="dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
