"""Static rules of app/Dockerfile, app/.dockerignore and the hash lock.

No Docker engine is available to the tests, so the image is checked by
reading its inputs.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
UID_GID = "10001:10001"


def instructions() -> list[tuple[str, str]]:
    """[(INSTRUCTION, arguments)] with continuations joined and comments dropped."""
    out, buf = [], ""
    for raw in (APP / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_from_images_are_pinned_slim_python():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert froms, "no FROM"
    names = set()
    for args in froms:
        parts = args.split()
        image = parts[0]
        if len(parts) >= 3 and parts[1].upper() == "AS":
            names.add(parts[2])
        if image in names:
            continue  # FROM an earlier stage
        assert "$" not in image, "FROM must be literal, so the pin is visible"
        assert ":latest" not in image and ":" in image, f"unpinned base {image}"
        tag = image.split(":", 1)[1].split("@")[0]
        assert re.fullmatch(r"3\.11\.\d+-slim-(bookworm|trixie)", tag), f"tag not fully pinned: {tag}"
        assert image.startswith("python:")


def test_no_latest_anywhere():
    assert ":latest" not in (APP / "Dockerfile").read_text()


def test_runtime_stage_runs_as_numeric_non_root_user():
    final = stages()[-1]
    users = [args for word, args in final if word == "USER"]
    assert users == [UID_GID]
    # nothing runs as root after USER (no RUN after it)
    idx = [w for w, _ in final].index("USER")
    assert "RUN" not in [w for w, _ in final[idx:]]


def test_dependencies_installed_with_require_hashes_from_wheels():
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert "--require-hashes" in runs
    assert "-r /tmp/requirements.txt" in runs or "-r requirements.txt" in runs
    assert "--only-binary=:all:" in runs  # no sdist builds, hence no compiler
    assert "--no-cache-dir" in runs


def test_final_stage_has_no_compilers_or_package_caches():
    final = stages()[-1]
    text = " ".join(args for _, args in final)
    for word in ("apt-get", "build-essential", "gcc", "pip install"):
        assert word not in text
    assert [w for w, _ in final].count("RUN") == 0
    copies = [args for word, args in final if word == "COPY"]
    assert any(a.startswith("--from=") and "/opt/venv" in a for a in copies)


def test_env_for_read_only_root_filesystem():
    env = " ".join(args for word, args in stages()[-1] if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "HOME=/tmp" in env and "TMPDIR=/tmp" in env


def test_oci_labels_from_args():
    text = (APP / "Dockerfile").read_text()
    final = stages()[-1]
    args = {a.split("=")[0] for w, a in final if w == "ARG"}
    assert {"SOURCE", "REVISION", "VERSION"} <= args
    for key, arg in (("source", "SOURCE"), ("revision", "REVISION"), ("version", "VERSION")):
        assert re.search(rf'org\.opencontainers\.image\.{key}="\$\{{{arg}\}}"', text), key


def test_cmd_is_the_tested_command():
    final = stages()[-1]
    workdir = [a for w, a in final if w == "WORKDIR"][-1]
    cmd = [a for w, a in final if w == "CMD"][-1]
    assert workdir == "/app"
    assert cmd == '["python", "server.py"]'  # exec form: python is PID 1 and gets SIGTERM
    assert [a for w, a in final if w == "EXPOSE"] == ["8000"]
    copies = [a for w, a in final if w == "COPY" and not a.startswith("--from")]
    assert any(shlex.split(c)[0] == "server.py" for c in copies)


# --- .dockerignore: an allow-list, and exactly the image task's hash inputs -----


def dockerignore() -> list[str]:
    lines = (APP / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_dockerignore_is_a_plain_allow_list():
    rules = dockerignore()
    assert rules[0] == "*"
    for rule in rules[1:]:
        assert rule.startswith("!"), rule
        name = rule[1:]
        assert "/" not in name and "*" not in name and "?" not in name, rule
        assert (APP / name).is_file(), f"{rule}: no such file"


def _included(rel: str) -> bool:
    # Docker semantics for this simple list: last matching rule wins.
    keep = True
    for rule in dockerignore():
        neg = rule.startswith("!")
        pat = rule[1:] if neg else rule
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel.split("/")[0], pat):
            keep = neg
    return keep


def test_build_inputs_are_exactly_the_runtime_files():
    files = {p.relative_to(APP).as_posix() for p in APP.rglob("*") if p.is_file()}
    inputs = {f for f in files if _included(f)}
    assert inputs == {"Dockerfile", "server.py", "requirements.txt"}
    assert not any(_included(x) for x in ("__pycache__/server.cpython-311.pyc", "tests/test_x.py",
                                          ".pytest_cache/v", "requirements.in"))


def test_every_dockerfile_copy_source_is_in_the_context():
    for word, args in instructions():
        if word != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = shlex.split(args)
        for src in sources:
            assert _included(src), f"COPY {src} is excluded by .dockerignore"


# --- the lock ----------------------------------------------------------------------------------


def _requirements() -> dict[str, list[str]]:
    text = (APP / "requirements.txt").read_text().replace("\\\n", " ")
    reqs = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *opts = line.split()
        reqs[spec] = [o for o in opts if o.startswith("--hash=")]
    return reqs


def test_lock_pins_every_requirement_with_hashes():
    reqs = _requirements()
    assert reqs
    for spec, hashes in reqs.items():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", spec), spec
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), spec


@pytest.mark.parametrize("name", ["uvicorn", "uvloop", "httptools", "prometheus-client", "h11", "click"])
def test_lock_covers_direct_and_transitive_dependencies(name):
    names = {spec.split("==")[0].lower().replace("_", "-") for spec in _requirements()}
    assert name in names


def test_lock_names_no_index():
    text = (APP / "requirements.txt").read_text()
    assert "://" not in text and "--index-url" not in text and "--find-links" not in text


def test_an_edit_to_server_py_rebuilds_one_small_layer():
    """Layer caching on the classic builder and BuildKit alike: the classic builder re-runs every step
    after the first whose cache key changed, and an ARG whose value differs per build (REVISION,
    VERSION) changes the key of the LABEL using it. So the source and the per-build metadata come last,
    after the dependency layers (the venv), and the build stage reads only requirements.txt."""
    build, final = stages()[0], stages()[-1]
    build_copies = [args for word, args in build if word in ("COPY", "ADD")]
    assert build_copies == ["requirements.txt /tmp/requirements.txt"], build_copies
    words = [w for w, _ in final]
    layers = [i for i, (w, _) in enumerate(final) if w in ("COPY", "ADD", "RUN")]
    source = next(i for i, (w, a) in enumerate(final) if w == "COPY" and "server.py" in a)
    assert layers[-1] == source, "server.py must be the last layer of the image"
    assert all("server.py" not in final[i][1] for i in layers[:-1])
    per_build = [i for i, (w, a) in enumerate(final)
                 if (w == "ARG" and a.split("=")[0] in ("SOURCE", "REVISION", "VERSION")) or w == "LABEL"]
    assert per_build and min(per_build) > source, "per-build ARG/LABEL before a layer: it is rebuilt every time"
    assert "USER" in words and words.index("USER") < source  # (COPY keeps root ownership: read-only code)
