#!/usr/bin/env python3
"""Read a Flux controller's own Dockerfile and say how the kit builds the same image.

    debianize.py build-args DOCKERFILE         the `go build` arguments upstream uses, one a line
    debianize.py dockerfile DOCKERFILE BASE    upstream's runtime stage, rebased onto BASE (Debian)

Upstream builds in golang:alpine (with tonistiigi/xx) and ships on alpine; neither image is
reachable here. Reading the Dockerfile at the pinned version, instead of restating it, keeps the
kit's entrypoint, user, environment and extra packages equal to upstream's when Flux moves on.
Anything this does not recognise stops the build rather than being guessed.
"""
from __future__ import annotations

import json
import re
import shlex
import sys

# Alpine package names whose Debian name differs (the rest are the same in both).
APK_TO_DEB: dict[str, str] = {}


def instructions(path: str) -> list[tuple[str, str]]:
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def runtime_stage(path: str) -> list[tuple[str, str]]:
    ins = instructions(path)
    last = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last + 1:]


def build_args(path: str) -> list[str]:
    for word, rest in instructions(path):
        if word == "RUN" and re.search(r"\bxx-go build\b", rest):
            args = shlex.split(rest.split("xx-go build", 1)[1])
            # -a only defeats the build cache; the binary is the same without it.
            return [a for a in args if a != "-a"]
    raise SystemExit(f"debianize: no `xx-go build` line in {path}")


def apk_packages(run: str) -> list[str]:
    m = re.fullmatch(r"apk\s+(?:--no-cache\s+)?add\s+(?:--no-cache\s+)?([\w.+\- ]+?)"
                     r"(?:\s*&&\s*update-ca-certificates)?", run)
    if not m:
        raise SystemExit(f"debianize: unexpected RUN in the runtime stage: {run!r}")
    return [APK_TO_DEB.get(p, p) for p in m.group(1).split()]


def dockerfile(path: str, base: str) -> str:
    lines = [f"FROM {base}"]
    packages: list[str] = []
    entry: list[str] = []
    for word, rest in runtime_stage(path):
        if word == "ARG":
            continue  # buildx platform arguments; the kit builds for the host only
        if word == "RUN":
            packages += apk_packages(rest)
            continue
        if word == "COPY":
            m = re.fullmatch(r"--from=\S+\s+/workspace/(\S+)\s+(\S+)", rest)
            if not m:
                raise SystemExit(f"debianize: unexpected COPY in the runtime stage: {rest!r}")
            lines.append(f"COPY {m.group(1)} {m.group(2)}")
            continue
        if word == "ENTRYPOINT":
            entry = json.loads(rest)
        if word in {"USER", "ENV", "ENTRYPOINT", "CMD", "WORKDIR", "LABEL", "EXPOSE"}:
            lines.append(f"{word} {rest}")
            continue
        raise SystemExit(f"debianize: unexpected {word} in the runtime stage of {path}")
    if packages:
        # Alpine puts tini in /sbin; Debian in /usr/bin: keep upstream's entrypoint path working.
        links = [f'{{ [ -e {p} ] || ln -s "$(command -v {p.rsplit("/", 1)[1]})" {p}; }}'
                 for p in entry if p.startswith("/")]
        pkgs = " ".join(packages)
        run = (f"RUN dpkg -s {pkgs} >/dev/null 2>&1 || {{ apt-get update -qq"
               f" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {pkgs}"
               f" && apt-get clean && rm -rf /var/lib/apt/lists/*; }}")
        if links:
            run += " && " + " && ".join(links)
        lines.insert(1, run)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "build-args":
        print("\n".join(build_args(argv[1])))
        return 0
    if len(argv) == 3 and argv[0] == "dockerfile":
        sys.stdout.write(dockerfile(argv[1], argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
