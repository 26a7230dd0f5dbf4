"""GITOPS_SOURCE=git against the fakes: a private repository, reached with a credential the user
names, which reaches the cluster as a Secret and is never echoed."""
from __future__ import annotations

import base64
import json

URL = "https://github.com/me/lab.git"
TOKEN = "ghp_n0tAr3alT0kenButL0ng3n0ugh"


def test_private_repository_with_a_token_never_echoed(lab):
    lab.world.add_git_repo(URL, lab.root, password=TOKEN)  # a Git artifact is the whole repository
    proc = lab.doit("setup", "GITOPS_SOURCE=git", "GITHUB_USER=me", "GITHUB_REPO=lab", GIT_TOKEN=TOKEN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert not any(TOKEN in " ".join(call["argv"]) for call in lab.world.calls())  # never on a command line
    secret = next(o for o in lab.world.objects("gitops-lab", "Secret", "flux-system")
                  if o["metadata"]["name"] == "lab-git")
    assert base64.b64decode(secret["data"]["password"]).decode() == TOKEN
    repo = next(o for o in lab.world.objects("gitops-lab", "GitRepository", "flux-system"))
    assert repo["spec"]["url"] == URL and repo["spec"]["secretRef"] == {"name": "lab-git"}
    shown = lab.doit("config", "GITOPS_SOURCE=git", GIT_TOKEN=TOKEN)
    assert TOKEN not in shown.stdout and "***" in shown.stdout
    assert TOKEN not in json.dumps(sorted(p.name for p in (lab.root / ".lab").rglob("*")))
    for state_file in (lab.root / ".lab").rglob("*"):
        if state_file.is_file():
            assert TOKEN.encode() not in state_file.read_bytes(), state_file
