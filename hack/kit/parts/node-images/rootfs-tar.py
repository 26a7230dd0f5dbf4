#!/usr/bin/env python3
"""Write a folder as a root filesystem tar for `docker import`, on stdout.

Why not plain `tar`: every entry must belong to root (or to the uid given), whoever
staged the folder; mtimes are fixed so the same inputs give the same layer; and some
binaries need a file capability (upstream's coredns and kube-apiserver images carry
cap_net_bind_service), which `docker build` loses on COPY --from but `docker import`
keeps from the tar's PAX header.

    rootfs-tar.py DIR [--cap PATH=cap_net_bind_service] [--owner PATH=UID:GID] > rootfs.tar
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import tarfile

CAPS = {"cap_net_bind_service": 10}
MTIME = 946684800  # 2000-01-01: fixed, so identical inputs give an identical layer


def vfs_cap(names: list[str]) -> str:
    """security.capability value (VFS_CAP_REVISION_2, effective): permitted = names."""
    bits = 0
    for n in names:
        bits |= 1 << CAPS[n]
    raw = struct.pack("<IIIII", 0x02000000 | 0x1, bits & 0xFFFFFFFF, 0, bits >> 32, 0)
    return raw.decode("latin-1")  # tarfile writes PAX values as text; these bytes are < 0x80


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--cap", action="append", default=[], help="PATH=capability")
    ap.add_argument("--owner", action="append", default=[], help="PATH=UID:GID")
    args = ap.parse_args()
    caps: dict[str, list[str]] = {}
    for c in args.cap:
        path, name = c.split("=", 1)
        caps.setdefault(path.strip("/"), []).append(name)
    owners = {p.strip("/"): tuple(int(x) for x in o.split(":")) for p, o in (x.split("=", 1) for x in args.owner)}

    entries = []
    for dirpath, dirnames, filenames in os.walk(args.root):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            entries.append(os.path.join(dirpath, name))
    entries.sort(key=lambda p: os.path.relpath(p, args.root))

    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for full in entries:
            rel = os.path.relpath(full, args.root)
            info = tar.gettarinfo(full, arcname=rel)
            info.uid, info.gid = owners.get(rel, (0, 0))
            info.uname = info.gname = ""
            info.mtime = MTIME
            if rel in caps:
                info.pax_headers = {"SCHILY.xattr.security.capability": vfs_cap(caps.pop(rel))}
            if info.isreg():
                with open(full, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    if caps:
        print(f"rootfs-tar: no such file for --cap: {', '.join(caps)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
