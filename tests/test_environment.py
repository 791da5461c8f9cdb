"""One pinned test environment: pyproject.toml declares every pin ./run installs for the tests,
./run reads them from there, and the environment the suite runs in is that one (the suite's
numbers — trained CNNs, landmarks, Whisper's words, rich's layout — were measured on it)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _pins(reqs: list[str]) -> dict[str, str]:
    """name → version of the ``name==version`` requirements (names normalised as PEP 503)."""
    out = {}
    for r in reqs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", r)
        if m:
            out[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[2]
    return out


def test_run_script_hard_codes_no_version():
    """Every pin ./run installs comes from pyproject.toml (read with tomllib), none typed twice."""
    run = (ROOT / "run").read_text()
    assert not re.findall(r"[A-Za-z0-9_.\-]+==[0-9]", run)
    assert "test_env first" in run and "test_env no-deps" in run


def test_first_installs_are_the_test_extras_own_pins():
    d = _pyproject()
    env = d["tool"]["sovtp"]["test-env"]
    test = _pins(d["project"]["optional-dependencies"]["test"])
    first = _pins(env["first"])
    assert set(first) == {"torch", "torchvision"}
    assert all(test[k] == v for k, v in first.items()), (first, test)
    assert len(_pins(env["no-deps"])) == len(env["no-deps"]) == 1  # exact pins only


def test_the_suite_runs_in_the_pinned_environment():
    d = _pyproject()
    pins = _pins(d["project"]["optional-dependencies"]["test"])
    pins |= _pins(d["tool"]["sovtp"]["test-env"]["no-deps"])
    assert len(pins) >= 20
    wrong = {}
    for name, want in pins.items():
        try:
            got = metadata.version(name)
        except metadata.PackageNotFoundError:
            got = None
        if got != want:
            wrong[name] = (want, got)
    assert not wrong, f"installed versions differ from pyproject.toml's pins: {wrong}"
