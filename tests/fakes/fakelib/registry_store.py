"""On-disk OCI registry storage shared by the registry server process,
`docker push`, `flux push artifact` and the simulated source-controller.

Layout under ROOT (the registry container's /var/lib/registry volume):
  blobs/sha256/<hex>                 content-addressed blobs (manifests too)
  repositories/<name>/tags/<tag>     text file holding the manifest digest
  repositories/<name>/manifests/<hex> empty marker: manifest belongs to repo
"""

import gzip
import hashlib
import io
import json
import os

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
IMAGE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(root, data):
    d = digest_of(data)
    p = os.path.join(root, "blobs", "sha256", d.split(":", 1)[1])
    if not os.path.exists(p):
        _write_atomic(p, data)
    return d


def get_blob(root, digest):
    if not digest.startswith("sha256:"):
        return None
    p = os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])
    try:
        with open(p, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def put_manifest(root, repo, data, tag=None):
    d = put_blob(root, data)
    _write_atomic(os.path.join(root, "repositories", repo, "manifests", d.split(":", 1)[1]), b"")
    if tag:
        _write_atomic(os.path.join(root, "repositories", repo, "tags", tag), d.encode())
    return d


def resolve(root, repo, ref):
    """-> (digest, manifest bytes) or None."""
    if ref.startswith("sha256:"):
        if not os.path.exists(os.path.join(root, "repositories", repo, "manifests", ref.split(":", 1)[1])):
            return None
        data = get_blob(root, ref)
        return (ref, data) if data is not None else None
    try:
        with open(os.path.join(root, "repositories", repo, "tags", ref)) as f:
            d = f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    data = get_blob(root, d)
    return (d, data) if data is not None else None


def list_tags(root, repo):
    try:
        return sorted(os.listdir(os.path.join(root, "repositories", repo, "tags")))
    except FileNotFoundError:
        return None


def catalog(root):
    base = os.path.join(root, "repositories")
    out = []
    for dirpath, dirnames, _ in os.walk(base):
        if "tags" in dirnames or "manifests" in dirnames:
            out.append(os.path.relpath(dirpath, base))
            dirnames[:] = [d for d in dirnames if d not in ("tags", "manifests")]
    return sorted(out)


def deterministic_tgz(path, ignore=(".git",)):
    """tar+gzip of a directory (or single file), sorted, mtime 0, uid 0."""
    import tarfile
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
            entries = []
            if os.path.isfile(path):
                entries.append((os.path.basename(path), path))
            else:
                for dirpath, dirnames, filenames in os.walk(path):
                    dirnames[:] = sorted(d for d in dirnames if d not in ignore)
                    for fn in sorted(filenames):
                        full = os.path.join(dirpath, fn)
                        entries.append((os.path.relpath(full, path), full))
            for rel, full in sorted(entries):
                with open(full, "rb") as f:
                    data = f.read()
                ti = tarfile.TarInfo(rel)
                ti.size = len(data)
                ti.mtime = 0
                ti.mode = 0o644
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def extract_tgz(data, dest):
    import tarfile
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for m in tf.getmembers():
            if m.name.startswith("/") or ".." in m.name.split("/"):
                continue
            tf.extract(m, dest)


def push_flux_artifact(root, repo, tag, dir_path, source, revision, annotations=None):
    layer = deterministic_tgz(dir_path)
    layer_d = put_blob(root, layer)
    config = b"{}"
    config_d = put_blob(root, config)
    ann = {"org.opencontainers.image.source": source, "org.opencontainers.image.revision": revision}
    for a in annotations or []:
        k, _, v = a.partition("=")
        ann[k] = v
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, "digest": config_d, "size": len(config)},
        "layers": [{"mediaType": FLUX_LAYER, "digest": layer_d, "size": len(layer)}],
        "annotations": dict(sorted(ann.items())),
    }
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return put_manifest(root, repo, data, tag)


def push_image(root, repo, tag, image_id, labels):
    config = json.dumps({"architecture": "amd64", "os": "linux", "fake_image_id": image_id,
                         "config": {"Labels": labels or {}}}, sort_keys=True).encode()
    config_d = put_blob(root, config)
    layer = gzip.compress(image_id.encode(), mtime=0)
    layer_d = put_blob(root, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": IMAGE_CONFIG, "digest": config_d, "size": len(config)},
        "layers": [{"mediaType": IMAGE_LAYER, "digest": layer_d, "size": len(layer)}],
    }
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return put_manifest(root, repo, data, tag), len(data)


def image_id_of(root, repo, ref):
    r = resolve(root, repo, ref)
    if not r:
        return None
    try:
        m = json.loads(r[1])
        cfg = json.loads(get_blob(root, m["config"]["digest"]) or b"{}")
        return cfg.get("fake_image_id")
    except Exception:
        return None


HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def put_chart(root, repo, tag):
    """A Helm chart as `helm push` stores it: config + one chart layer, an OCI image manifest."""
    name = repo.rsplit("/", 1)[-1]
    config = json.dumps({"name": name, "version": tag, "apiVersion": "v2"}).encode()
    content = ("%s-%s.tgz (fake chart)" % (name, tag)).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": HELM_CONFIG, "digest": put_blob(root, config), "size": len(config)},
                "layers": [{"mediaType": HELM_CONTENT, "digest": put_blob(root, content), "size": len(content)}],
                "annotations": {"org.opencontainers.image.title": name, "org.opencontainers.image.version": tag}}
    return put_manifest(root, repo, json.dumps(manifest).encode(), tag)
