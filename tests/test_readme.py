"""The README is a front page (under 10 KB) whose commands work as written: every command in its indented
code blocks is extracted; the short ones run here, in an empty folder, and the others are accounted for."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# commands that do not run in the default suite, and where they are covered instead
ELSEWHERE = {
    "kinn solve poisson2d --family mlp": "slow: the full recommended budget (45 s alone), test_the_setup_command_solves",
    "python -m pytest": "the test suite itself",
    "mkdocs build --strict": ".ci/run builds the documentation with warnings as errors",
}


def commands() -> list[str]:
    """Each line of an indented code block, without its comment; a `pip install ... && b` line gives the
    install and b; other chains stay whole (their parts depend on each other)."""
    lines = [s[4:] for s in README.splitlines() if s.startswith("    ") and not s.startswith("     ")]
    out = []
    for line in lines:
        line = re.split(r"\s+#\s", line)[0].strip()
        if line.startswith("pip install"):
            install, _, rest = line.partition(" && ")
            out += [install, rest] if rest else [install]
        else:
            out.append(line)
    return out


def run(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    if argv[0] == "kinn":  # the console script of this checkout
        argv = [sys.executable, "-m", "kinn", *argv[1:]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


SHORT = [c for c in commands() if not c.startswith("pip install") and c not in ELSEWHERE]


def test_readme_is_a_front_page_and_every_command_is_accounted_for():
    assert len(README.encode()) < 10_000
    assert set(ELSEWHERE) <= set(commands())
    assert len(SHORT) >= 4


def test_the_install_commands_name_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for command in (c for c in commands() if c.startswith("pip install")):
        argv = shlex.split(command)
        extras = re.search(r"\[(.*)\]", argv[-1]).group(1).split(",")
        assert set(extras) <= set(project["optional-dependencies"]), command
        pins = [a for a in argv if a.startswith("torch")]
        assert all(p.startswith("torch==") for p in pins) and any(d.startswith("torch>=") for d in project["dependencies"])


@pytest.mark.parametrize("command", SHORT)
def test_short_command_works_as_written(command, tmp_path):
    for part in command.split(" && "):
        done = run(part, tmp_path)
        assert done.returncode == 0, f"{part}\n{done.stderr[-3000:]}"


@pytest.mark.slow
def test_the_setup_command_solves(tmp_path):
    done = run("kinn solve poisson2d --family mlp --json", tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
