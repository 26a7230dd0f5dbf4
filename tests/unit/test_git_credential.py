"""GITOPS_SOURCE=git with a private repository: the credential the user names, checked before use."""
from __future__ import annotations

import pytest

from tasks.core import config
from tasks.steps import sync
from tasks.core.errors import LabError

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
GITHUB = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def cfg(**settings):
    return config.load({"GITOPS_SOURCE": "git", "GITHUB_USER": "me", "GITHUB_REPO": "lab", **settings}, {})


def test_public_repository_needs_no_credential():
    c = cfg()
    assert sync.git_credential(c) is None and sync.git_url(c) == "https://github.com/me/lab.git"


def test_token_is_the_password_over_https():
    c = cfg(GIT_TOKEN="t0ken")
    assert sync.git_credential(c) == {"username": "me", "password": "t0ken"}
    assert sync.git_url(c) == "https://github.com/me/lab.git"
    assert "t0ken" not in str(c.rows())


def test_ssh_key_with_githubs_host_key(tmp_path):
    key, hosts = tmp_path / "id_lab", tmp_path / "known_hosts"
    key.write_text(KEY)
    hosts.write_text("gitlab.com ssh-ed25519 AAAAother\n" + GITHUB + "\n")
    c = cfg(GIT_SSH_KEY_FILE=str(key), GIT_KNOWN_HOSTS_FILE=str(hosts))
    assert sync.git_url(c) == "ssh://git@github.com/me/lab.git"
    assert sync.git_credential(c) == {"identity": KEY, "known_hosts": GITHUB + "\n"}


def test_ssh_without_githubs_host_key_is_one_clear_line(tmp_path):
    key, hosts = tmp_path / "id_lab", tmp_path / "known_hosts"
    key.write_text(KEY)
    hosts.write_text("gitlab.com ssh-ed25519 AAAAother\n")
    with pytest.raises(LabError) as err:
        sync.git_credential(cfg(GIT_SSH_KEY_FILE=str(key), GIT_KNOWN_HOSTS_FILE=str(hosts)))
    assert "no github.com host key" in err.value.line() and "ssh-keyscan github.com" in err.value.line()
    assert "not-a-real-key" not in err.value.line()


def test_unreadable_key_is_one_clear_line(tmp_path):
    with pytest.raises(LabError, match="cannot read GIT_SSH_KEY_FILE"):
        sync.git_credential(cfg(GIT_SSH_KEY_FILE=str(tmp_path / "missing")))


def test_token_and_key_together_are_refused(tmp_path):
    with pytest.raises(LabError, match="GIT_TOKEN and GIT_SSH_KEY_FILE are both set"):
        cfg(GIT_TOKEN="t", GIT_SSH_KEY_FILE=str(tmp_path / "k"))
