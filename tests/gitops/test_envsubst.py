"""Flux post-build substitution semantics (drone/envsubst as used by kustomize-controller)."""

from __future__ import annotations

import pytest

from tasks.validation import RenderError, envsubst


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:=d}", {}, "d"),
        ("${A:=d}", {"A": ""}, "d"),
        ("${A:=d}", {"A": "x"}, "x"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A:-d}", {"A": "x"}, "x"),
        ("${A=d}", {}, "d"),
        ("${A=d}", {"A": ""}, ""),
        ("${A-d}", {"A": "x"}, "x"),
        ("image: ${APP_IMAGE:=localhost:5001/lab-app:0.1.0}", {}, "image: localhost:5001/lab-app:0.1.0"),
        ("image: ${APP_IMAGE:=localhost:5001/lab-app:0.1.0}", {"APP_IMAGE": "r/app:1"}, "image: r/app:1"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("cost $5 and $A", {"A": "x"}, "cost $5 and $A"),
        ("${A}-${B:=b}", {"A": "a"}, "a-b"),
    ],
)
def test_envsubst(text, variables, expected):
    assert envsubst(text, variables) == expected


def test_undefined_variable_fails_in_strict_mode():
    with pytest.raises(RenderError, match="variable not set"):
        envsubst("${MISSING}", {})
    assert envsubst("${MISSING}", {}, strict=False) == ""


def test_invalid_reference_fails():
    with pytest.raises(RenderError, match="invalid variable reference"):
        envsubst("${1BAD}", {})
