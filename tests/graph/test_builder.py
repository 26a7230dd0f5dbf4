"""The app image is built with BuildKit where the Docker CLI has buildx, with the classic builder
where it has not (DOCKER_BUILDKIT=1 there is an error), asked once per run and only when building."""
from __future__ import annotations

import time


def builders(lab) -> dict[str, str]:
    """tag -> the builder the fake docker used for it."""
    return {tag: img.get("builder", "") for img in lab.world.state()["docker"]["images"].values()
            for tag in img["tags"] if "lab-app" in tag}


def test_buildkit_where_buildx_answers_else_the_classic_builder(lab):
    proc = lab.doit("image")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DOCKER_BUILDKIT=1 docker build" in proc.stdout
    assert set(builders(lab).values()) == {"buildkit"}
    assert sum(c.startswith("docker buildx version") for c in lab.calls()) == 1

    server = lab.root / "app" / "server.py"
    server.write_text(server.read_text() + f"\n# edited {time.time()}\n")
    lab.world.clear_calls()
    proc = lab.doit("image", FAKE_DOCKER_BUILDX="0")  # e.g. Debian's docker.io: no buildx plugin
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DOCKER_BUILDKIT" not in proc.stdout
    assert sorted(builders(lab).values()) == ["buildkit", "classic"]

    lab.world.clear_calls()
    proc = lab.doit("image", FAKE_DOCKER_BUILDX="0")  # up to date: no build, so nothing asked
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not any(c.startswith(("docker buildx", "docker build")) for c in lab.calls()), lab.calls()
