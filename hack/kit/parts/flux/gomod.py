#!/usr/bin/env python3
"""What a controller's go.mod needs before its module zip builds on its own.

    gomod.py nested DIR                 nested modules the zip leaves out: MODULE VERSION PATH a line
    gomod.py substitute DIR SUBSTITUTES  apply the SUBSTITUTES file to DIR/go.mod (go mod edit)

A module zip omits nested modules (a controller's ./api), which its go.mod replaces by path;
upstream's Dockerfile copies them from the repository, the kit from their own module zips.
"""
from __future__ import annotations

import json
import subprocess
import sys


def gomod(src: str) -> dict:
    return json.loads(subprocess.run(["go", "mod", "edit", "-json"], cwd=src, check=True,
                                     capture_output=True, text=True).stdout)


def nested(src: str) -> None:
    m = gomod(src)
    need = {r["Path"]: r["Version"] for r in m.get("Require") or []}
    for r in m.get("Replace") or []:
        if r["New"]["Path"].startswith("./"):
            print(r["Old"]["Path"], need[r["Old"]["Path"]], r["New"]["Path"])


def substitutes(path: str) -> list[tuple[str, str]]:
    pairs = []
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].split()
        if line:
            wanted, served = line
            pairs.append((wanted, served))
    return pairs


def substitute(src: str, path: str) -> None:
    m = gomod(src)
    for wanted, served in substitutes(path):
        w_path, w_version = wanted.split("@")
        edits = []
        for r in m.get("Replace") or []:
            new = r["New"]
            if new["Path"] == w_path and new.get("Version") == w_version:
                old = r["Old"]["Path"] + (f"@{r['Old']['Version']}" if r["Old"].get("Version") else "")
                edits.append(f"-replace={old}={served}")
        if not edits:
            # harmless where the build never selects WANTED
            edits.append(f"-replace={wanted}={served}")
        for e in edits:
            print(f"substitute: {e[len('-replace='):]}", file=sys.stderr)
        subprocess.run(["go", "mod", "edit", *edits], cwd=src, check=True)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "nested":
        nested(argv[1])
        return 0
    if len(argv) == 3 and argv[0] == "substitute":
        substitute(argv[1], argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
