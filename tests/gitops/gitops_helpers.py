"""Helpers shared by the GitOps tests (a uniquely named module: several test
directories have a conftest.py, so `from conftest import ...` would be ambiguous)."""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Callable

import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
COPIED = ("flux-cd", "kind-three-node.yaml", "docs/DESIGN.md")


def _kubectl_available() -> bool:
    return bool(os.environ.get("KUBECTL") or shutil.which("kubectl"))


requires_kubectl = pytest.mark.skipif(not _kubectl_available(), reason="kubectl (with kustomize v5) not on PATH")
def edit_yaml(path: pathlib.Path, change: Callable[[list], list | None]) -> None:
    """Load every document of `path`, let `change` mutate (or replace) the list, write it back."""
    docs = list(yaml.safe_load_all(path.read_text()))
    result = change(docs)
    # A change may return a new list of documents (objects with apiVersion);
    # any other return value (e.g. from dict.pop) is ignored.
    if isinstance(result, list) and result and all(isinstance(x, dict) and "apiVersion" in x for x in result):
        docs = result
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def find(docs: list, kind: str, name: str | None = None) -> dict:
    return next(d for d in docs if d and d.get("kind") == kind and (name is None or d["metadata"]["name"] == name))
