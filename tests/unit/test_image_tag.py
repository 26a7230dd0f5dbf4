"""The image tag is the content of exactly the build context .dockerignore leaves."""
from tasks.steps import image


def make_app(tmp_path, ignore="*\n!Dockerfile\n!server.py\n!requirements.txt\n"):
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (app / "server.py").write_text("print('hi')\n")
    (app / "requirements.txt").write_text("flask==3.1.3\n")
    (app / ".dockerignore").write_text(ignore)
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\0\1")
    (app / "notes.md").write_text("scratch\n")
    return app


def test_build_inputs_follow_dockerignore(tmp_path):
    app = make_app(tmp_path)
    names = [p.relative_to(app).as_posix() for p in image.build_inputs(app)]
    assert names == [".dockerignore", "Dockerfile", "requirements.txt", "server.py"]


def test_edit_to_an_input_changes_the_tag_and_other_files_do_not(tmp_path):
    app = make_app(tmp_path)
    before = image.content_tag(app)
    (app / "notes.md").write_text("more scratch\n")
    (app / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\2")
    assert image.content_tag(app) == before
    (app / "server.py").write_text("print('hello')\n")
    after = image.content_tag(app)
    assert after != before and len(after) == 12 and after != "latest"


def test_renaming_a_file_changes_the_tag(tmp_path):
    app = make_app(tmp_path, ignore="notes.md\n")
    before = image.content_tag(app)
    (app / "server.py").rename(app / "main.py")
    assert image.content_tag(app) != before


def test_dockerignore_patterns():
    rules = [(False, image._pattern_regex("**/*.pyc")), (False, image._pattern_regex("tests")),
             (True, image._pattern_regex("tests/keep.txt"))]
    assert image.excluded("a/b/c.pyc", rules)
    assert image.excluded("c.pyc", rules)
    assert image.excluded("tests/x.py", rules)
    assert not image.excluded("tests/keep.txt", rules)
    assert not image.excluded("server.py", rules)


def test_real_app_has_inputs_and_no_tests_in_them():
    inputs = [p.relative_to(image.APP_DIR).as_posix() for p in image.build_inputs()]
    assert "Dockerfile" in inputs and "server.py" in inputs
    assert not any("__pycache__" in p or p.startswith("tests") for p in inputs)
