"""The objects `doit debug_*` leave in the cluster, and their removal: by `doit debug_cleanup` and by
the teardown (a core module, so that teardown need not import the debug commands)."""
from __future__ import annotations

from tasks.core import console, kube, names


def remove(lab) -> None:
    """The probe pod in monitoring, the outsider namespace (with its probe pod), every shell pod."""
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", names.MONITORING_NAMESPACE, "delete", "pod", names.PROBE_POD,
                                           "--ignore-not-found", "--wait=false"), timeout=60)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "delete", "namespace", names.OUTSIDER, "--ignore-not-found",
                                           "--wait=false"), timeout=60)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "delete", "pod", "--all-namespaces", "-l",
                                           f"{names.DEBUG_LABEL}=shell", "--ignore-not-found", "--wait=false"),
             timeout=60)
    console.ok(f"debug pods removed; namespace {names.OUTSIDER} is being deleted")
