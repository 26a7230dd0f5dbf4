#!/usr/bin/env python3
"""Install pinned kind, kubectl and flux into /usr/local/bin (CI only; Linux/macOS).

Versions come from tasks/versions.py, the one place they are pinned.
Usage: python3 hack/ci/install-tools.py kind kubectl flux
"""
from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tasks import versions  # noqa: E402

SYSTEM = platform.system().lower()
ARCH = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "amd64"
DEST = Path("/usr/local/bin")


def fetch(url: str) -> bytes:
    print(f"downloading {url}", flush=True)
    with urllib.request.urlopen(url, timeout=120) as res:
        return res.read()


def verified(url: str, sums_url: str, filename: str | None = None) -> bytes:
    """Download url and check it against the release's published sha256."""
    import hashlib
    data = fetch(url)
    sums = fetch(sums_url).decode()
    want = None
    for line in sums.splitlines():
        parts = line.split()
        if len(parts) == 1 or (filename and parts[-1].lstrip("*") == filename):
            want = parts[0]
    have = hashlib.sha256(data).hexdigest()
    if want != have:
        sys.exit(f"checksum mismatch for {url}: expected {want}, got {have}")
    return data


def install(name: str, data: bytes) -> None:
    """Write the file in the target directory, then rename it over the target.

    A rename is atomic only within one filesystem: renaming a file downloaded elsewhere (the
    working directory, /tmp) into /usr/local/bin fails with EXDEV where they are different
    filesystems. Writing beside the target first makes the rename always local.
    """
    target = DEST / name
    if os.access(DEST, os.W_OK):
        fd, tmp = tempfile.mkstemp(dir=DEST, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        # `install` copies (so it works across filesystems) and sets the mode in one step.
        with tempfile.TemporaryDirectory() as work:
            tmp = Path(work) / name
            tmp.write_bytes(data)
            subprocess.run(["sudo", "install", "-m", "0755", str(tmp), str(target)], check=True)
    print(f"installed {target}", flush=True)


def main(tools: list[str]) -> None:
    for tool in tools:
        if tool == "kind":
            url = f"https://github.com/kubernetes-sigs/kind/releases/download/v{versions.KIND_VERSION}/kind-{SYSTEM}-{ARCH}"
            install("kind", verified(url, url + ".sha256sum", f"kind-{SYSTEM}-{ARCH}"))
        elif tool == "kubectl":
            url = f"https://dl.k8s.io/release/v{versions.KUBECTL_VERSION}/bin/{SYSTEM}/{ARCH}/kubectl"
            install("kubectl", verified(url, url + ".sha256"))
        elif tool == "flux":
            v = versions.FLUX_VERSION
            base = f"https://github.com/fluxcd/flux2/releases/download/v{v}"
            name = f"flux_{v}_{SYSTEM}_{ARCH}.tar.gz"
            blob = verified(f"{base}/{name}", f"{base}/flux_{v}_checksums.txt", name)
            with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
                install("flux", tar.extractfile("flux").read())
        else:
            sys.exit(f"unknown tool {tool!r}: expected kind, kubectl or flux")


if __name__ == "__main__":
    main(sys.argv[1:] or ["kind", "kubectl", "flux"])
