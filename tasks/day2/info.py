"""Settings, versions and install help (config, check_versions, install_tools)."""
from __future__ import annotations

import platform

from tasks import versions
from tasks.core import console, floors
from tasks.steps import preflight
from tasks.core.tools import SPECS


def print_config(cfg) -> None:
    console.print_table(["NAME", "VALUE", "FROM", "MEANING"], cfg.rows())


def check_versions(lab) -> None:
    pinned = {"kind": versions.KIND_VERSION, "kubectl": versions.KUBECTL_VERSION,
              "flux": versions.FLUX_VERSION, "docker": "-"}
    rows = []
    for tool in preflight.TOOLS:
        try:
            have = lab.check_version(tool)
        except Exception as exc:  # noqa: BLE001 - a missing tool is a row, not a crash
            have = f"missing/too old: {getattr(exc, 'what', exc)}"
        rows.append([tool, have, f">= {floors.for_tool(tool, lab.cfg).version}", pinned[tool]])
    console.print_table(["TOOL", "INSTALLED", "NEEDED", "CI INSTALLS"], rows)
    print()
    console.print_table(["COMPONENT", "PINNED"], [
        ["Kubernetes (node image)", lab.cfg.KIND_NODE_IMAGE], ["Flux", lab.cfg.FLUX_VERSION],
        ["metrics-server", versions.METRICS_SERVER_VERSION],
        ["kube-prometheus-stack chart", versions.KUBE_PROMETHEUS_STACK_CHART],
        ["registry image", lab.cfg.REGISTRY_IMAGE]])


def install_commands(tool: str, system: str | None = None, machine: str | None = None) -> list[str]:
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "amd64"
    if system == "darwin":
        return {"kind": [f"brew install kind   # or: go install sigs.k8s.io/kind@v{versions.KIND_VERSION}"],
                "kubectl": ["brew install kubectl"],
                "flux": ["brew install fluxcd/tap/flux"]}[tool]
    return {
        "kind": [f"curl -fsSLo ./kind https://kind.sigs.k8s.io/dl/v{versions.KIND_VERSION}/kind-linux-{arch}",
                 "chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind"],
        "kubectl": [f"curl -fsSLO https://dl.k8s.io/release/v{versions.KUBECTL_VERSION}/bin/linux/{arch}/kubectl",
                    "chmod +x ./kubectl && sudo mv ./kubectl /usr/local/bin/kubectl"],
        "flux": [f"curl -fsSLO https://github.com/fluxcd/flux2/releases/download/v{versions.FLUX_VERSION}/"
                 f"flux_{versions.FLUX_VERSION}_linux_{arch}.tar.gz",
                 f"tar -xzf flux_{versions.FLUX_VERSION}_linux_{arch}.tar.gz flux && sudo mv flux /usr/local/bin/flux"],
    }[tool]


def print_install(*tools: str):
    def run() -> None:
        console.say("Run these yourself (nothing is installed for you):", "bold")
        for tool in tools:
            console.say(f"\n# {tool} ({SPECS[tool].install_url})")
            for line in install_commands(tool):
                print(f"  {line}")
    return run


def current_context(lab) -> None:
    print(lab.probe("kubectl", "config", "current-context", check=False).out.strip() or "(none)")


def list_clusters(lab) -> None:
    res = lab.probe("kind", "get", "clusters")
    print(res.out.strip() or "(no kind clusters)")


def mirror_status(lab) -> None:
    from tasks.steps import mirrors
    if not mirrors.enabled(lab.cfg):
        console.info("MIRRORS=off: the nodes pull from the upstream registries (MIRRORS=on or offline to use mirrors)")
        return
    rows = mirrors.status_rows(lab)
    console.print_table(["IMAGE", "MIRROR", "STATE"], rows)
    missing = sum(r[2] != "present" for r in rows)
    if missing:
        console.warn(f"{missing} of {len(rows)} image(s) missing: `doit mirror_fill MIRRORS={lab.cfg.MIRRORS}` copies them")
    else:
        console.ok(f"all {len(rows)} image(s) the cluster pulls are in the mirrors")
