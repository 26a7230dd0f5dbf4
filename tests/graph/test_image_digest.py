"""The app image reaches the cluster by the digest its push returned: `name:tag@sha256:…` in lab-vars
and in every environment's Deployment, so IfNotPresent pulls exactly what was pushed."""
from __future__ import annotations

import re

import requests

from tasks.core.names import ENVIRONMENTS
from tests.graph.conftest import has


def registry_digest(lab, tag: str) -> str:
    res = requests.head(f"http://127.0.0.1:{lab.port}/v2/lab-app/manifests/{tag}", timeout=10,
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                           "application/vnd.docker.distribution.manifest.v2+json"})
    assert res.status_code == 200
    return res.headers["Docker-Content-Digest"]


def app_image(lab) -> str:
    (cm,) = [o for o in lab.world.objects("gitops-lab", "ConfigMap", "flux-system")
             if o["metadata"]["name"] == "lab-vars"]
    return cm["data"]["APP_IMAGE"]


def running(lab) -> set[str]:
    return {next(o for o in lab.world.objects("gitops-lab", "Deployment", env) if o["metadata"]["name"] == "app")
            ["spec"]["template"]["spec"]["containers"][0]["image"] for env in ENVIRONMENTS}


def test_lab_vars_and_deployments_name_the_image_by_its_pushed_digest(built):
    lab = built
    ref = app_image(lab)
    found = re.fullmatch(rf"localhost:{lab.port}/lab-app:([0-9a-f]+)@(sha256:[0-9a-f]{{64}})", ref)
    assert found, ref
    assert found.group(2) == registry_digest(lab, found.group(1))
    assert running(lab) == {ref}

    server = lab.root / "app" / "server.py"  # a new build: a new tag and a new digest, both followed
    server.write_text(server.read_text() + "\n# an edit\n")
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert has(lab.mutating(), "docker push")
    new = app_image(lab)
    assert new != ref and new.split("@")[1] == registry_digest(lab, new.split("@")[0].rsplit(":", 1)[1])
    assert running(lab) == {new}
