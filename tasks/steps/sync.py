"""GitOps sync: flux-cd/ published as an OCI artifact to the local registry and
pulled by an in-cluster OCIRepository — no GitHub account, no deploy key, no git push.

The image reference reaches the manifests through Flux post-build substitution
from the ConfigMap flux-system/lab-vars, so no tracked file is edited.
"""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import yaml

from tasks.core import console, flux_status, kube, names
from tasks.steps import cluster, image, mirrors, reconcile, registry
from tasks.core.errors import LabError
from tasks.core.state import source_url
from tasks.core.tools import Secret

GITOPS_DIR = names.GITOPS_DIR
ARTIFACT = names.SOURCE
VARS = names.VARS_CONFIGMAP


def gitops_files() -> list[Path]:
    return sorted(p for p in GITOPS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def content_digest(folder: str = "") -> str:
    """sha256 over flux-cd/ (or its FOLDER): the artifact's tag, and what each folder's annotation says."""
    digest = hashlib.sha256()
    for path in gitops_files():
        rel = path.relative_to(GITOPS_DIR).as_posix()
        if folder and not rel.startswith(folder + "/"):
            continue
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


PULL_SECRET = names.PULL_SECRET


def artifact_url(cfg, tag: str) -> str:
    return f"oci://{cfg.image_registry}/{ARTIFACT}:{tag}"


def auth_args(cfg) -> list:
    """flux push/tag authentication for a remote registry: provider or --creds (never echoed)."""
    if not cfg.remote_registry:
        return []
    if cfg.REGISTRY_PROVIDER != "generic":
        return [f"--provider={cfg.REGISTRY_PROVIDER}"]
    if cfg.REGISTRY_USERNAME:
        return [Secret(f"--creds={cfg.REGISTRY_USERNAME}:{cfg.REGISTRY_PASSWORD}")]
    return []  # flux reads the user's docker login


def write_pull_secret(lab) -> None:
    """In-cluster credentials for the OCIRepository, sent on stdin (never on a command line)."""
    host = lab.cfg.REGISTRY.split("/", 1)[0]
    auth = base64.b64encode(f"{lab.cfg.REGISTRY_USERNAME}:{lab.cfg.REGISTRY_PASSWORD}".encode()).decode()
    dockerconfig = json.dumps({"auths": {host: {"username": lab.cfg.REGISTRY_USERNAME,
                                                "password": lab.cfg.REGISTRY_PASSWORD, "auth": auth}}})
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
              "metadata": {"name": PULL_SECRET, "namespace": names.FLUX_NAMESPACE, "labels": dict(names.MANAGED_BY)},
              "data": {".dockerconfigjson": base64.b64encode(dockerconfig.encode()).decode()}}
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"), stdin=json.dumps(secret), timeout=60)


def vars_configmap(cfg, image_ref: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": VARS, "namespace": names.FLUX_NAMESPACE, "labels": dict(names.MANAGED_BY)},
            "data": {names.VARS_IMAGE_KEY: image_ref}}


# lab.memo key: the image lab-vars was last seen (or written) naming in this run. Outside "kube", so a
# kubectl or flux call of ours does not forget it: none of them changes lab-vars but write_vars.
VARS_SEEN = "lab-vars-seen"


def vars_maps(lab) -> dict[str, dict]:
    """The ConfigMaps of flux-system by name (lab-vars, the pinned lab-vars-<env>): one read per run."""
    return {cm["metadata"]["name"]: cm for cm in kube.in_namespace(lab, "configmaps", names.FLUX_NAMESPACE)}


def vars_problem(lab, image_ref: str) -> LabError | None:
    """What is wrong with ConfigMap lab-vars, the image every environment following each publish runs."""
    if lab.memo.get(VARS_SEEN) == image_ref:
        return None  # this run read or wrote it so already (sync, then verify: no second read)
    have = vars_maps(lab).get(VARS)
    where = f"ConfigMap {names.FLUX_NAMESPACE}/{VARS}"
    if have is None:
        return LabError(f"{where} does not exist",
                        "without it every environment falls back to the manifests' default image, which the lab "
                        "never builds", "run `doit sync` (it writes it again and reconciles)")
    named = (have.get("data") or {}).get(names.VARS_IMAGE_KEY)
    if named != image_ref:
        return LabError(f"{where} names {named or 'no ' + names.VARS_IMAGE_KEY}, not this lab's image {image_ref}",
                        "every environment following each publish runs what it names",
                        "run `doit sync` (it writes it again and reconciles)")
    lab.memo[VARS_SEEN] = image_ref
    return None


def write_vars(lab, image_ref: str) -> bool:
    """Did lab-vars change (it was missing, or named another image)?"""
    if vars_problem(lab, image_ref) is None:
        return False
    want = vars_configmap(lab.cfg, image_ref)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"), stdin=json.dumps(want), timeout=60)
    lab.memo[VARS_SEEN] = image_ref
    return True


def publish(lab) -> str:
    """Push flux-cd/ unless the registry already serves this content as `latest`."""
    full = content_digest()
    tag = full[:12]
    have = None if lab.cfg.remote_registry else registry.has_manifest(lab.cfg, ARTIFACT, tag)
    if have and registry.has_manifest(lab.cfg, ARTIFACT, "latest") == have:
        console.info(f"artifact {ARTIFACT}:{tag} already published as latest")
        return have
    # --reproducible: without it flux stamps the push time, and the same flux-cd/ would get a
    # new digest (and Flux a new revision) on every publish.
    # The infrastructure folder's digest rides along (the OCIRepository's status repeats it): the next sync
    # tells from it whether infrastructure must be reconciled (tasks/steps/reconcile.py).
    lab.mutate("flux", "push", "artifact", artifact_url(lab.cfg, tag), f"--path={GITOPS_DIR}",
             f"--source={source_url()}", f"--revision=local@sha256:{full}", "--reproducible",
             f"--annotations={reconcile.INFRASTRUCTURE_DIGEST}={infrastructure_digest()}", *auth_args(lab.cfg),
             timeout=300)
    lab.mutate("flux", "tag", "artifact", artifact_url(lab.cfg, tag), "--tag", "latest", *auth_args(lab.cfg), timeout=120)
    if lab.cfg.remote_registry:
        return f"{lab.cfg.REGISTRY}/{ARTIFACT}:{tag}"
    return registry.has_manifest(lab.cfg, ARTIFACT, tag) or "dry-run"


def infrastructure_digest() -> str:
    return content_digest(names.INFRASTRUCTURE_PATH)[:16]


def bootstrap_dir(cfg) -> Path:
    return GITOPS_DIR / "bootstrap" / cfg.GITOPS_SOURCE


GIT_SECRET = names.GIT_SECRET  # the credential of a private GITOPS_SOURCE=git repository


def git_url(cfg) -> str:
    if cfg.GIT_SSH_KEY_FILE:
        return f"ssh://git@github.com/{cfg.GITHUB_USER}/{cfg.GITHUB_REPO}.git"
    return f"https://github.com/{cfg.GITHUB_USER}/{cfg.GITHUB_REPO}.git"


def git_credential(cfg) -> dict[str, str] | None:
    """The Secret data Flux's GitRepository authenticates with: a token over HTTPS (GIT_TOKEN) or an
    SSH key (GIT_SSH_KEY_FILE, with the server's key from GIT_KNOWN_HOSTS_FILE); None: a public repository."""
    if cfg.GIT_TOKEN:
        # GitHub takes any non-empty username with a token as the password.
        return {"username": cfg.GITHUB_USER or "git", "password": cfg.GIT_TOKEN}
    if not cfg.GIT_SSH_KEY_FILE:
        return None
    key_file = Path(cfg.GIT_SSH_KEY_FILE).expanduser()
    try:
        identity = key_file.read_text()
    except OSError as exc:
        raise LabError(f"cannot read GIT_SSH_KEY_FILE={cfg.GIT_SSH_KEY_FILE}", exc.strerror or str(exc),
                       "point it at the private key of a deploy key (read access) of the repository") from None
    hosts_file = Path(cfg.GIT_KNOWN_HOSTS_FILE).expanduser()
    try:
        known = [line for line in hosts_file.read_text().splitlines()
                 if line.split(" ", 1)[0].split(",").count("github.com")]
    except OSError:
        known = []
    if not known:
        raise LabError(f"no github.com host key in {cfg.GIT_KNOWN_HOSTS_FILE}",
                       "Flux checks the server's SSH host key before it clones",
                       "add an unhashed line (`ssh-keyscan github.com >> ~/.ssh/known_hosts`, then compare it "
                       "with the fingerprints GitHub publishes) or set GIT_KNOWN_HOSTS_FILE")
    return {"identity": identity, "known_hosts": "\n".join(known) + "\n"}


def write_git_secret(lab, credential: dict[str, str]) -> None:
    """The private repository's credential as Secret flux-system/lab-git, on stdin (never on a command line)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": GIT_SECRET, "namespace": names.FLUX_NAMESPACE, "labels": dict(names.MANAGED_BY)},
              "data": {k: base64.b64encode(v.encode()).decode() for k, v in credential.items()}}
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"), stdin=json.dumps(secret), timeout=60)


_LOCAL_HOSTS = ("localhost", "127.0.0.1")


def local_registry_in_cluster(lab) -> str | None:
    """REGISTRY=localhost:PORT on an existing cluster: the name its pods use for that registry,
    from the `local-registry-hosting` ConfigMap (KEP-1755) kind's local-registry recipe creates.
    Inside a pod, localhost is the pod itself, so without it the cluster cannot reach REGISTRY."""
    host = lab.cfg.REGISTRY.split("/", 1)[0]
    if not lab.cfg.existing or host.split(":")[0] not in _LOCAL_HOSTS:
        return None
    if "local_registry" not in _memo:
        doc = kube.get_json(lab, "configmap", "local-registry-hosting", "-n", "kube-public", missing_ok=True)
        hosting = yaml.safe_load((doc or {}).get("data", {}).get("localRegistryHosting.v1", "") or "{}") or {}
        if hosting.get("host", "").replace("127.0.0.1", "localhost") != host.replace("127.0.0.1", "localhost") \
                or not hosting.get("hostFromClusterNetwork"):
            raise LabError(f"REGISTRY={lab.cfg.REGISTRY} is on this machine, and cluster {lab.cfg.KUBE_CONTEXT} does not "
                           "say how its pods reach it",
                           "inside a pod, localhost is the pod itself; kind's local-registry recipe publishes the "
                           "in-cluster name in ConfigMap kube-public/local-registry-hosting (KEP-1755)",
                           "create that ConfigMap (https://kind.sigs.k8s.io/docs/user/local-registry/), or use a "
                           "registry the cluster reaches by the same name")
        path = lab.cfg.REGISTRY.partition("/")[2]
        _memo["local_registry"] = hosting["hostFromClusterNetwork"] + (f"/{path}" if path else "")
    return _memo["local_registry"]


_memo: dict[str, str] = {}


def render_bootstrap(lab) -> str:
    """The bootstrap for GITOPS_SOURCE, pointed at this lab's registry or git repository."""
    rendered = lab.probe("kubectl", "kustomize", str(bootstrap_dir(lab.cfg)), timeout=60).out
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "OCIRepository" and lab.cfg.remote_registry and local_registry_in_cluster(lab):
            # the user's own kind registry: the cluster knows it by another name (KEP-1755)
            spec["url"] = f"oci://{local_registry_in_cluster(lab)}/{ARTIFACT}"
        elif doc["kind"] == "OCIRepository" and lab.cfg.remote_registry:
            spec["url"] = f"oci://{lab.cfg.REGISTRY}/{ARTIFACT}"
            spec.pop("insecure", None)  # a real registry speaks TLS
            if lab.cfg.REGISTRY_PROVIDER != "generic":
                spec["provider"] = lab.cfg.REGISTRY_PROVIDER  # workload identity
            elif lab.cfg.REGISTRY_USERNAME:
                spec["secretRef"] = {"name": PULL_SECRET}
        elif doc["kind"] == "OCIRepository":
            spec["url"] = f"oci://{lab.cfg.REGISTRY_NAME}:5000/{ARTIFACT}"
        elif doc["kind"] == "GitRepository":
            spec["url"] = git_url(lab.cfg)
            spec["ref"] = {"branch": lab.cfg.GIT_BRANCH}
            if lab.cfg.GIT_TOKEN or lab.cfg.GIT_SSH_KEY_FILE:
                spec["secretRef"] = {"name": GIT_SECRET}
    apply_monitoring(docs, lab.cfg.MONITORING, "./flux-cd" if lab.cfg.GITOPS_SOURCE == "git" else ".")
    mirrors.point_charts_at_mirrors(docs, lab.cfg)
    from tasks.steps import pinning  # WATCH_ENVS: the other environments follow their own tag
    pinning.apply_pinning(docs, pinning.pinned(lab.cfg))
    return yaml.safe_dump_all(docs, sort_keys=False)


# MONITORING picks the infrastructure layer; the paths are flux-cd/ folders.
INFRASTRUCTURE_PATHS = {"full": f"./{names.INFRASTRUCTURE_PATH}", "crds": f"./{names.INFRASTRUCTURE_PATH}/crds",
                        "off": f"./{names.INFRASTRUCTURE_PATH}/off"}
MONITORING_KINDS = tuple((f"{names.PROMETHEUS_OPERATOR_GROUP}/v1", kind) for kind in ("ServiceMonitor", "PrometheusRule"))


def apply_monitoring(docs: list[dict], mode: str, root: str = ".") -> list[dict]:
    """Point the infrastructure Kustomization at MONITORING's layer; with `off`, the apps'
    Kustomizations delete the ServiceMonitor and PrometheusRule their overlays render,
    whose CRDs nothing installs then (flux-cd/ itself stays one tree for every mode). `root` is where
    flux-cd/ sits in the source's artifact: `.` in the OCI artifact, `./flux-cd` in a Git checkout."""
    for doc in docs:
        if doc.get("kind") != "Kustomization" or "kustomize.toolkit.fluxcd.io" not in doc.get("apiVersion", ""):
            continue
        name = doc["metadata"]["name"]
        if name == names.INFRASTRUCTURE:
            doc["spec"]["path"] = root + INFRASTRUCTURE_PATHS[mode][1:]
        elif name in names.APP_LAYERS.values() and mode == "off":
            doc["spec"]["patches"] = [
                {"patch": f"$patch: delete\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {names.APP}\n",
                 "target": {"kind": kind, "name": names.APP}} for api, kind in MONITORING_KINDS]
    return docs


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
def _covers(live, want) -> bool:
    """Does LIVE hold every field of WANT (the server adds defaults, never drops what was applied)?"""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(k in live and _covers(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(map(_covers, live, want))
    seconds = kube.duration_seconds
    return live == want or (seconds(want) is not None and seconds(want) == seconds(live))


def bootstrap_applied(docs: list[dict], before: "reconcile.Before") -> bool:
    """Is this bootstrap what the cluster runs? Each object as `kubectl apply` last wrote it (its
    last-applied annotation equals the document: nothing to add, change or remove) and as it still is
    (no hand edit of a field the bootstrap sets, which an apply would revert)."""
    kinds = {"Kustomization": before.kustomizations, "OCIRepository": before.sources, "GitRepository": before.sources}
    for doc in docs:
        live = kinds.get(doc.get("kind"), {}).get(doc["metadata"]["name"])
        if live is None or live.get("kind") != doc["kind"]:
            return False
        try:
            last = json.loads((live["metadata"].get("annotations") or {}).get(LAST_APPLIED) or "null")
        except ValueError:
            return False
        if last != json.loads(json.dumps(doc)) or not _covers(live, {"metadata": {
                k: v for k, v in doc["metadata"].items() if k in ("labels", "annotations")}, "spec": doc.get("spec", {})}):
            return False
    return True


def apply_bootstrap(lab, before: "reconcile.Before | None" = None) -> frozenset[str]:
    """Apply the bootstrap unless the cluster runs it already (BEFORE: the Flux objects as this run found
    them). Returns the names of the Flux objects it created or whose spec it changed (the API server
    moves an object's generation on a spec change only)."""
    if lab.cfg.GITOPS_SOURCE == "git" and not (lab.cfg.GITHUB_USER and lab.cfg.GITHUB_REPO):
        raise LabError("GITOPS_SOURCE=git needs GITHUB_USER and GITHUB_REPO",
                       "Flux pulls the manifests from that repository",
                       "set both (e.g. `doit setup GITOPS_SOURCE=git GITHUB_USER=me GITHUB_REPO=lab`) "
                       "or use the default GITOPS_SOURCE=oci")
    secrets = False
    if lab.cfg.remote_registry and lab.cfg.REGISTRY_USERNAME and lab.cfg.GITOPS_SOURCE == "oci":
        write_pull_secret(lab)
        secrets = True
    credential = git_credential(lab.cfg) if lab.cfg.GITOPS_SOURCE == "git" else None
    if credential:
        write_git_secret(lab, credential)
        secrets = True
    rendered = render_bootstrap(lab)
    if before is not None and not secrets and not lab.dry_run \
            and bootstrap_applied([d for d in yaml.safe_load_all(rendered) if d], before):
        console.info("bootstrap unchanged in the cluster")
        return frozenset()
    res = lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-", "-o", "json"), stdin=rendered,
                     timeout=120)
    try:
        applied = kube.items(json.loads(res.out)) if res.out.strip() else []
    except ValueError:
        applied = []
    had = {} if before is None else {(o["kind"], name): o["metadata"].get("generation")
                                     for objs in (before.kustomizations, before.sources) for name, o in objs.items()}
    return frozenset(o["metadata"]["name"] for o in applied
                     if had.get((o.get("kind"), o["metadata"]["name"])) != o["metadata"].get("generation"))


def ensure_reconciled(lab, before: "reconcile.Before", *, digest: str | None, image_changed: bool, image: str,
                      seeded: tuple[str, ...] = (), changed: frozenset[str] = frozenset()) -> None:
    """Reconcile what this sync changed (tasks/steps/reconcile.py): the environments side by side."""
    from tasks.steps import pinning
    todo = reconcile.plan(before, source=ARTIFACT, digest=digest, infrastructure_digest=infrastructure_digest(),
                          image_changed=image_changed, follow=pinning.watched(lab.cfg), seeded=seeded,
                          changed=changed, image=image)
    reconcile.run(lab, todo)


def is_ready(lab) -> bool:
    """Reality: what the last sync left is still so — what `verify` checks that a sync can repair. The
    source and every Kustomization exist, read what WATCH_ENVS says, are Ready (not suspended) and applied
    the revision their source serves; the source serves what the registry holds; lab-vars names this lab's
    image (and each pinned environment has its lab-vars-<env>)."""
    listed = kube.setup_read(lab, "kustomizations.kustomize.toolkit.fluxcd.io")
    found = {o["metadata"]["name"] for o in kube.objects(listed, namespace=names.FLUX_NAMESPACE)}
    if not set(names.FLUX_KUSTOMIZATIONS) <= found:
        return False
    kind = "ocirepositories" if lab.cfg.GITOPS_SOURCE == "oci" else "gitrepositories"
    sources = kube.setup_read(lab, f"{kind}.source.toolkit.fluxcd.io")
    if not kube.objects(sources, namespace=names.FLUX_NAMESPACE, name=ARTIFACT):
        return False
    from tasks.steps import pinning  # each apps-<env> reads the source WATCH_ENVS says
    if not pinning.bootstrap_matches(lab.cfg, listed, sources):
        return False
    return applied(lab, listed, sources) and vars_problem(lab, image.pinned_ref(lab)) is None \
        and pinning.promotions_present(lab)


def applied(lab, kustomizations: list[dict], sources: list[dict]) -> bool:
    """Each of the lab's Kustomizations and sources Ready and not suspended; each Kustomization applied the
    revision its source serves; each OCI source serves the digest its tag has in the local registry."""
    by_name = {o["metadata"]["name"]: o for o in kube.objects(sources, namespace=names.FLUX_NAMESPACE)}
    digests: dict[str, str | None] = {}  # tag -> its digest in the registry, asked once
    for ks in kube.objects(kustomizations, namespace=names.FLUX_NAMESPACE):
        if ks["metadata"]["name"] not in names.FLUX_KUSTOMIZATIONS:
            continue
        source = by_name.get(((ks.get("spec") or {}).get("sourceRef") or {}).get("name"))
        if source is None or not _settled(ks) or not _settled(source):
            return False
        serves = ((source.get("status") or {}).get("artifact") or {}).get("revision")
        if not serves or (ks.get("status") or {}).get("lastAppliedRevision") != serves:
            return False
        tag = ((source.get("spec") or {}).get("ref") or {}).get("tag")
        if lab.cfg.GITOPS_SOURCE == "oci" and not lab.cfg.remote_registry and tag:
            if tag not in digests:
                digests[tag] = registry.has_manifest(lab.cfg, ARTIFACT, tag)
            digest = digests[tag]
            if digest is None or not serves.endswith(f"@{digest}"):
                return False
    return True


def _settled(obj: dict) -> bool:
    return not (obj.get("spec") or {}).get("suspend") and kube.is_true(obj)


def ensure(lab) -> dict:
    # The image by the digest its push returned (name:tag@sha256:…); in a dry run nothing was pushed.
    ref = image.image_ref(lab.cfg) if lab.dry_run else image.pinned_ref(lab)
    if lab.dry_run and cluster.identity(lab) is None:
        # Nothing to read in a cluster that does not exist yet: show the plan.
        publish(lab)
        lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"), f"# ConfigMap {VARS} + bootstrap")
        reconcile.run(lab, reconcile.plan(reconcile.Before({}, {}), source=ARTIFACT, digest=None,
                                          infrastructure_digest="", image_changed=True,
                                          follow=names.ENVIRONMENTS))
        return {"artifact": "dry-run", "image": ref}
    # Flux reconciles nothing suspended (`flux reconcile` would refuse, "resource is suspended"): say so
    # before anything changes (the listing this run's up-to-date check read).
    paused = flux_status.suspended(lab.cfg, flux_status.objects(lab))
    if paused:
        raise flux_status.suspended_error(lab.cfg, paused)
    from tasks.steps import pinning
    # The Flux objects as this run's up-to-date check read them (no new read), before anything changes.
    before = reconcile.observe(lab)
    # Environments WATCH_ENVS no longer pins.
    unpinned = pinning.stale(lab.cfg, list(before.kustomizations.values()))
    image_changed = write_vars(lab, ref)
    digest = publish(lab) if lab.cfg.GITOPS_SOURCE == "oci" else "git"
    seeded = tuple(pinning.seed(lab, ref))
    changed = apply_bootstrap(lab, before) | {names.APP_LAYERS[env] for env in unpinned}
    pinning.forget_pins(lab, unpinned)
    pushed = digest if isinstance(digest, str) and digest.startswith("sha256:") else None
    ensure_reconciled(lab, before, digest=pushed, image_changed=image_changed, image=ref, seeded=seeded,
                      changed=changed)
    if not lab.dry_run:
        from tasks.steps import verify
        # One read for this check and for verify's, which follows; waiting only when something is not Ready.
        kube.snapshot(lab, verify.reads(lab.cfg))
        objs = flux_status.objects(lab)
        if flux_status.not_ready(objs) or flux_status.missing(lab.cfg, objs):
            flux_status.wait_ready(lab, timeout=900)
    return {"artifact": digest, "image": ref}
