"""What `verify` (and `check_flux`) find after a hand-made breakage, said in one line whose advice,
followed literally, repairs the lab (issue 24 items 8, 10, 11, 12), against the fakes.

`doit -s verify` runs verify alone (without its dependency on sync), as a user sees it after the
breakage; `doit setup` is the same check after sync's reality check had its say."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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


# --- item 11: each thing verify finds, repaired by the command its line names ----------------------

def _delete_lab_vars_and_let_flux_fall_back(lab):
    kubectl(lab, "-n", names.FLUX_NAMESPACE, "delete", "configmap", "lab-vars")
    # Flux's next interval: dev falls back to the manifests' default image, which was never built
    lab.world.run("flux", "--context", CTX, "reconcile", "kustomization", "apps-dev", env=lab.env())


def _name_another_image(lab):
    kubectl(lab, "-n", names.FLUX_NAMESPACE, "patch", "configmap", "lab-vars", "--type", "merge",
            "-p", '{"data": {"APP_IMAGE": "localhost:5001/lab-app:other"}}')


def _delete_the_source(lab):
    kubectl(lab, "-n", names.FLUX_NAMESPACE, "delete", "ocirepositories.source.toolkit.fluxcd.io", "lab-gitops")


def _delete_a_deployment(lab):
    kubectl(lab, "-n", "staging", "delete", "deployment", "app")


def _change_an_image(lab):
    kubectl(lab, "-n", "production", "patch", "deployment", "app", "--type", "json", "-p",
            '[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "busybox:1.36"}]')


def _unlabel_the_workers(lab):
    kubectl(lab, "label", "node", "gitops-lab-worker", "gitops-lab-worker2", "gitops-lab/tier-")


BREAKAGES = {
    "lab-vars deleted, Flux fell back": (_delete_lab_vars_and_let_flux_fall_back,
                                         "ConfigMap flux-system/lab-vars does not exist"),
    "lab-vars names another image": (_name_another_image, "ConfigMap flux-system/lab-vars names localhost:5001/"
                                                          "lab-app:other, not this lab's image"),
    "source deleted": (_delete_the_source, "OCIRepository/flux-system/lab-gitops does not exist"),
    "Deployment deleted": (_delete_a_deployment, "no Deployment app in staging"),
    "image changed by hand": (_change_an_image, "production runs busybox:1.36, expected "),
    "workers unlabelled": (_unlabel_the_workers, "no node carries gitops-lab/tier=worker"),
}


def test_every_breakage_verify_names_is_repaired_by_its_advice(built):
    """Issue 24 item 11: break what verify checks, one thing at a time; its line's advice, followed
    literally (the one command it names), makes verify pass again."""
    lab = built
    for what, (breaks, said) in BREAKAGES.items():
        breaks(lab)
        line = one_line_failure(lab.doit("-s", "verify"))
        assert line.startswith(f"✗ {said}"), (what, line)
        command = re.search(r"`((?:doit|kubectl) [^`]+)`", line.rsplit(" — ", 1)[1])
        assert command, (what, line)
        words = command.group(1).split()
        proc = lab.doit(*words[1:]) if words[0] == "doit" else lab.world.run(*words, env=lab.env())
        assert proc.returncode == 0, (what, command.group(1), proc.stdout + proc.stderr)
        proc = lab.doit("-s", "verify")
        assert proc.returncode == 0, (what, command.group(1), proc.stdout + proc.stderr)


def test_what_the_registry_lost_is_named_and_doit_sync_pushes_it_again(built):
    """The registry's data purged (`doit stop_docker_registry PURGE=1`, then the registry started again):
    verify names the image it lost, and `doit sync` pushes the image and the GitOps artifact again."""
    lab = built
    proc = lab.doit("stop_docker_registry", PURGE="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.doit("registry").returncode == 0
    line = one_line_failure(lab.doit("-s", "verify"))
    assert line.startswith(f"✗ the registry holds no localhost:{lab.port}/lab-app:"), line
    assert advice(line) == "doit sync"
    lab.world.clear_calls()
    follow(lab, line)
    assert has(lab.mutating(), "docker push") and has(lab.mutating(), "flux push artifact")
    verified(lab)


def test_the_artifact_gone_from_the_registry_is_named_and_doit_sync_publishes_it_again(built):
    """Only the GitOps artifact gone from the registry (deleted there): at Flux's next interval the source
    fails; verify names it, and `doit sync` publishes flux-cd/ again."""
    lab = built
    shutil.rmtree(Path(lab.world.state_dir, "volumes", "kind-registry-data", "_data", "repositories", "lab-gitops"))
    lab.world.run("flux", "--context", CTX, "reconcile", "source", "oci", "lab-gitops", env=lab.env())  # the interval
    line = one_line_failure(lab.doit("-s", "verify"))
    assert line.startswith("✗ OCIRepository/flux-system/lab-gitops is not Ready — "), line
    assert advice(line) == "doit sync"
    lab.world.clear_calls()
    follow(lab, line)
    assert has(lab.mutating(), "flux push artifact") and not has(lab.mutating(), "docker push")
    verified(lab)


def test_setup_publishes_again_when_latest_names_another_artifact(built, tmp_path):
    """Another publish moved the registry's `latest` (another checkout, a push by hand): the cluster still
    runs what it fetched before, and `doit setup` puts this lab's flux-cd/ back as `latest`."""
    lab = built
    ours = lab.world.registry_tags("lab-gitops", port=lab.port)
    other = tmp_path / "other"
    other.mkdir()
    (other / "kustomization.yaml").write_text("resources: []\n")
    url = f"oci://localhost:{lab.port}/lab-gitops:other"
    for args in (("push", "artifact", url, f"--path={other}", "--source=file:///other", "--revision=other@sha1:1"),
                 ("tag", "artifact", url, "--tag", "latest")):
        res = lab.world.run("flux", *args, env=lab.env())
        assert res.returncode == 0, res.stderr
    lab.world.clear_calls()
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "▶ sync" in proc.stdout and has(lab.mutating(), "flux tag artifact")
    assert set(ours) <= set(lab.world.registry_tags("lab-gitops", port=lab.port))
    applied = {o["metadata"]["name"]: o["status"]["lastAppliedRevision"]
               for o in lab.world.objects("gitops-lab", "Kustomization", names.FLUX_NAMESPACE)}
    digest = lab.world.run("flux", "--context", CTX, "reconcile", "source", "oci", "lab-gitops", env=lab.env())
    assert digest.returncode == 0, digest.stderr
    assert len(set(applied.values())) == 1 and next(iter(applied.values())) in digest.stderr
