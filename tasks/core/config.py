"""The lab's variables: the Makefile's names, our additions, and where each value came from.

Precedence: `doit setup NAME=value` > environment variable > default here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from tasks import versions
from tasks.core import names
from tasks.core.errors import LabError


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


# --- validators: return the cleaned value or raise ValueError("accepted range") --

def _cluster_name(v: str) -> str:
    # kind: "cluster names must match `^[a-z0-9.-]+$`"; node container names add
    # "-control-plane", and Docker caps names, so keep it short too.
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,48}[a-z0-9])?", v):
        raise ValueError("lowercase letters, digits, '.' and '-', 1-50 characters, "
                         "starting and ending with a letter or digit")
    return v


def _port(v: str) -> str:
    if not v.isdigit() or not 1 <= int(v) <= 65535:
        raise ValueError("a whole number from 1 to 65535")
    return v


def _positive_int(v: str) -> str:
    if not v.isdigit() or int(v) < 1:
        raise ValueError("a whole number of at least 1")
    return v


def _seconds(v: str) -> str:
    if not v.isdigit():
        raise ValueError("a whole number of seconds, e.g. 60")
    return v


def _go_duration(v: str) -> str:
    if not re.fullmatch(r"(\d+(h|m|s))+", v):
        raise ValueError("a duration like 120s, 5m or 1m30s")
    return v


def _k8s_version(v: str) -> str:
    if not re.fullmatch(r"v\d+\.\d+\.\d+", v):
        raise ValueError("a Kubernetes version like v1.36.1")
    from tasks.core import floors  # the rule and its reason live there
    floor = floors.kubernetes()
    if _version_tuple(v) < _version_tuple(floor.version):
        raise ValueError(f"v{floor.version} or newer ({floor.why})")
    return v


def _flux_version(v: str) -> str:
    from tasks.core import floors  # the rule and its reason live there
    if not re.fullmatch(r"v?\d+\.\d+\.\d+", v):
        raise ValueError("a version like 2.9.4")
    floor = floors.flux()
    if _version_tuple(v) < _version_tuple(floor.version):
        raise ValueError(f"{floor.version} or newer: {floor.why}")
    return v.lstrip("v")


def _node_image(k8s_version: str) -> str:
    """kindest/node:<K8S_VERSION>, pinned by digest when that is the version tasks/versions.py pins."""
    ref = f"{versions.KIND_NODE_IMAGE_REPO}:{k8s_version}"
    return f"{ref}@{versions.KIND_NODE_IMAGE_DIGEST}" if k8s_version == versions.K8S_VERSION else ref


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(v: str) -> str:
        if v not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return v
    return check


def _flag(v: str) -> str:
    if v.lower() in ("", "0", "false", "no", "off"):
        return ""
    if v.lower() in ("1", "true", "yes", "on"):
        return "1"
    raise ValueError("1/true/yes or 0/false/no")


def _image(v: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:@-]*", v) or v.endswith(":latest"):
        raise ValueError("an image reference with a pinned tag or digest (not :latest)")
    return v


def _name(v: str) -> str:
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", v):
        raise ValueError("letters, digits, '_', '.', '-'")
    return v


def _anything(v: str) -> str:
    return v


_CHAIN = ("dev", "staging", "production")  # the promotion order (tasks/steps/sync.py ENVIRONMENTS)


def _watch_envs(v: str) -> str:
    # The environments that follow every publish: the start of the promotion chain. The others
    # move only on `doit promote`. All three (or none) is today's behaviour: everything follows.
    envs = [e.strip() for e in v.split(",") if e.strip()]
    if envs and envs != list(_CHAIN[:len(envs)]):
        raise ValueError("empty (every environment follows every publish), dev, or dev,staging: "
                         "the start of the promotion order dev → staging → production")
    return "" if len(envs) in (0, len(_CHAIN)) else ",".join(envs)


def _promote_to(v: str) -> str:
    if v not in ("", *_CHAIN[1:]):
        raise ValueError("empty (the next environment that lags behind), staging or production")
    return v


def _milliseconds(v: str) -> str:
    if not v.isdigit() or not 10 <= int(v) <= 60000:
        raise ValueError("a whole number of milliseconds from 10 to 60000")
    return v


def _remote_registry(v: str) -> str:
    # host[:port][/path], as docker and flux take it: no scheme, no tag.
    if v and not re.fullmatch(r"(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|\d+(\.\d+){3})(:\d{1,5})?(/[a-z0-9._-]+)*", v):
        raise ValueError("a registry like ghcr.io/me, 123456789012.dkr.ecr.eu-west-1.amazonaws.com or "
                         "registry.example.com:5000/team (no https://, no tag)")
    return v


_MIRROR_HOSTS = ("docker.io", "ghcr.io", "registry.k8s.io", "quay.io")


def _mirror_remotes(v: str) -> str:
    for item in filter(None, (i.strip() for i in v.split(","))):
        host, sep, url = item.partition("=")
        if not sep or host not in _MIRROR_HOSTS or not re.fullmatch(r"https?://[^\s,]+", url):
            raise ValueError(f"host=URL pairs separated by commas, host one of {', '.join(_MIRROR_HOSTS)}, "
                             "e.g. docker.io=https://proxy.example.com")
    return v


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | Callable[[dict], str]
    doc: str
    check: Callable[[str], str] = _anything
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    # The original Makefile's variables, same names, same meaning.
    Setting("CLUSTER_NAME", "gitops-lab", "kind cluster name", _cluster_name),
    Setting("K8S_VERSION", versions.K8S_VERSION, "Kubernetes version of the nodes", _k8s_version),
    Setting("KIND_NODE_IMAGE", lambda c: _node_image(c["K8S_VERSION"]),
            "kind node image (default kindest/node:$K8S_VERSION, by digest for the pinned version; "
            "a tag alone is taken as is, e.g. an image built locally)", _image),
    Setting("KUBE_CONTEXT", lambda c: f"kind-{c['CLUSTER_NAME']}", "kubectl context of the cluster"),
    Setting("CREATE_WAIT", "180s", "how long `kind create cluster --wait` waits for nodes", _go_duration),
    Setting("KIND_CONFIG", "kind-three-node.yaml", "kind cluster config file"),
    Setting("HPA_DURATION", "60", "seconds of load in hpa_demo", _seconds),
    Setting("HPA_CONCURRENCY", "50", "concurrent clients in hpa_demo", _positive_int),
    Setting("HPA_PAUSE", "5", "seconds between HPA samples (hpa_watch, hpa_reset's waits)", _positive_int),
    Setting("HPA_NAMESPACE", "dev", "environment hpa_demo loads", _one_of(*names.ENVIRONMENTS)),
    Setting("APP_ENV", "dev", "environment for deploy_*/cleanup_app/debug_app",
            _one_of(*names.ENVIRONMENTS)),
    Setting("FLUX_KUSTOMIZATION", "", "flux_suspend/flux_resume target (default: all of the lab's)"),
    Setting("GITHUB_USER", "", "GitHub owner for GITOPS_SOURCE=git"),
    Setting("GITHUB_REPO", "", "GitHub repository for GITOPS_SOURCE=git"),
    # Added by the new design.
    Setting("REGISTRY_NAME", "kind-registry", "local registry container name", _name),
    Setting("REGISTRY_PORT", "5001", "host port of the local registry (5000 is AirPlay on macOS)", _port),
    Setting("REGISTRY_IMAGE", versions.REGISTRY_IMAGE, "registry image (use a mirror without Docker Hub)", _image),
    Setting("FLUX_VERSION", versions.FLUX_VERSION, "Flux version installed in the cluster", _flux_version),
    Setting("GITOPS_SOURCE", "oci", "oci: local artifact (no GitHub); git: a Flux GitRepository on "
            "GITHUB_USER/GITHUB_REPO (public, or private with GIT_TOKEN or GIT_SSH_KEY_FILE)",
            _one_of(*names.BOOTSTRAP_VARIANTS)),
    Setting("GIT_BRANCH", "main", "branch for GITOPS_SOURCE=git", _name),
    Setting("GIT_TOKEN", "", "token (read access) for a private GITOPS_SOURCE=git repository over HTTPS; "
            "goes to Secret flux-system/lab-git on stdin, never printed", secret=True),
    Setting("GIT_SSH_KEY_FILE", "", "private key file (a deploy key) for a private GITOPS_SOURCE=git "
            "repository over SSH; its content goes to Secret flux-system/lab-git, never printed"),
    Setting("GIT_KNOWN_HOSTS_FILE", "~/.ssh/known_hosts", "where GIT_SSH_KEY_FILE's github.com host key is read"),
    # Off by default: mirrors add four containers and keep image data in volumes the user
    # did not ask for; `on` is the one to choose for a lab torn down and rebuilt often.
    Setting("MONITORING", "full", "full: kube-prometheus-stack; crds: only the Prometheus Operator CRDs the app's "
            "ServiceMonitor/PrometheusRule need; off: neither, and the app layer drops those two",
            _one_of("full", "crds", "off")),
    Setting("MIRRORS", "off", "on: pull-through caches per upstream for the nodes (kept across teardown); "
            "offline: the caches only, filled by `doit mirror_fill`; off: nodes pull upstream",
            _one_of("off", "on", "offline")),
    Setting("MIRROR_REMOTES", "", "where the mirrors fetch from instead of the registries themselves, "
            "host=URL[,host=URL] (e.g. docker.io=https://proxy.example.com, a company's registry proxy)",
            _mirror_remotes),
    # Beyond the laptop (see README "From kind to a real cluster").
    Setting("CLUSTER_PROVIDER", "kind", "kind: the lab makes a cluster; existing: use KUBE_CONTEXT as is",
            _one_of("kind", "existing")),
    Setting("REGISTRY", "", "remote registry for the image and the GitOps artifact (empty: the local one)",
            _remote_registry),
    Setting("CHART_MIRRORS", "", "where the cluster's Flux reads the infrastructure's Helm charts instead of their "
            "registry (kube-prometheus-stack's: ghcr.io), host=URL[,host=URL], e.g. ghcr.io=https://harbor.example.com/ghcr "
            "(a company's proxy cache for a cluster that cannot reach ghcr.io; http:// means plain HTTP). "
            "Default: the lab's mirror with MIRRORS on or offline, else the registry itself", _mirror_remotes),
    Setting("REGISTRY_PROVIDER", "generic", "how Flux authenticates to REGISTRY (workload identity: aws, azure, gcp)",
            _one_of("generic", "aws", "azure", "gcp")),
    Setting("REGISTRY_USERNAME", "", "username for REGISTRY when not using a provider"),
    Setting("REGISTRY_PASSWORD", "", "password/token for REGISTRY (never printed)", secret=True),
    # Edit and see (`doit watch`, `doit promote`; README "Edit and see").
    Setting("WATCH_ENVS", "", "environments that follow every publish (`doit watch` rolls them on each save): "
            "empty = all; dev or dev,staging = the others move only on `doit promote`", _watch_envs),
    Setting("WATCH_DEBOUNCE_MS", "300", "doit watch: a burst of saves is one run when each follows the last "
            "within this many milliseconds", _milliseconds),
    Setting("PROMOTE_TO", "", "doit promote: staging or production (default: the first environment behind "
            "the one before it)", _promote_to),
    Setting("DRY_RUN", "", "1: print the mutating commands, run none", _flag),
    Setting("PURGE", "", "1: teardown also deletes the registry's image data", _flag),
    Setting("SHOW_PASSWORD", "", "1: `doit grafana` prints Grafana's admin password", _flag),
    Setting("KIND", "kind", "kind binary"),
    Setting("KUBECTL", "kubectl", "kubectl binary"),
    Setting("FLUX", "flux", "flux binary"),
    Setting("DOCKER", "docker", "docker binary"),
)
NAMES = tuple(s.name for s in SETTINGS)


@dataclass(frozen=True)
class Config:
    values: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def registry_port(self) -> int:
        return int(self.REGISTRY_PORT)

    @property
    def dry_run(self) -> bool:
        return bool(self.DRY_RUN)

    @property
    def registry_host(self) -> str:
        return f"localhost:{self.REGISTRY_PORT}"

    @property
    def existing(self) -> bool:
        return self.CLUSTER_PROVIDER == "existing"

    @property
    def remote_registry(self) -> bool:
        return bool(self.REGISTRY)

    @property
    def image_registry(self) -> str:
        """Where images and the GitOps artifact go, as the host sees it."""
        return self.REGISTRY or self.registry_host

    @property
    def registry_volume(self) -> str:
        return f"{self.REGISTRY_NAME}-data"

    def replace(self, **values: str) -> "Config":
        """The same configuration with these settings changed (as if given on the command line)."""
        return Config({**self.values, **values}, {**self.sources, **{k: "command line" for k in values}})

    def rows(self) -> list[list[str]]:
        return [[s.name, "***" if s.secret and self.values[s.name] else self.values[s.name],
                 self.sources[s.name], s.doc] for s in SETTINGS]


def load(cli: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting; raise LabError naming the first invalid one."""
    cli = dict(cli or {})
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        if s.name in cli:
            raw, where = cli[s.name], "command line"
        elif env.get(s.name, "") != "":
            raw, where = env[s.name], "environment"
        else:
            raw = s.default(values) if callable(s.default) else s.default
            where = "default"
        try:
            values[s.name] = s.check(str(raw).strip())
        except ValueError as exc:
            raise LabError(f"invalid {s.name}={raw!r} (from {where})",
                           f"expected {exc}",
                           "fix it or unset it to use the default") from None
        sources[s.name] = where
    if values["CLUSTER_PROVIDER"] == "existing" and sources["KUBE_CONTEXT"] == "default":
        raise LabError("CLUSTER_PROVIDER=existing needs KUBE_CONTEXT", "the lab must not guess which cluster to use",
                       "set KUBE_CONTEXT to your cluster's context (`kubectl config get-contexts`)")
    if values["CLUSTER_PROVIDER"] == "existing" and not values["REGISTRY"]:
        raise LabError("CLUSTER_PROVIDER=existing needs REGISTRY", "a real cluster cannot pull from your laptop's registry",
                       "set REGISTRY to one it can reach, e.g. REGISTRY=ghcr.io/you")
    if values["GIT_TOKEN"] and values["GIT_SSH_KEY_FILE"]:
        raise LabError("GIT_TOKEN and GIT_SSH_KEY_FILE are both set", "the repository is reached over HTTPS with a "
                       "token or over SSH with a key, not both", "unset one of them")
    if bool(values["REGISTRY_USERNAME"]) != bool(values["REGISTRY_PASSWORD"]):
        raise LabError("REGISTRY_USERNAME and REGISTRY_PASSWORD go together", "one of them is empty",
                       "set both, or neither (then docker login / REGISTRY_PROVIDER is used)")
    if values["WATCH_ENVS"] and values["GITOPS_SOURCE"] != "oci":
        raise LabError(f"WATCH_ENVS={values['WATCH_ENVS']} needs GITOPS_SOURCE=oci",
                       "the other environments are promoted by tagging the published OCI artifact; with "
                       "GITOPS_SOURCE=git, promote through your repository's branches instead",
                       "unset WATCH_ENVS or use GITOPS_SOURCE=oci")
    unknown = sorted(set(cli) - set(NAMES))
    if unknown:
        raise LabError(f"unknown variable {unknown[0]}",
                       "it is not one of the lab's settings",
                       "run `doit config` to list them")
    return Config(values, sources)
