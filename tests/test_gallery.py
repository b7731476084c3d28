"""Every gallery example (docs/examples/plot_*.py) runs at its smoke size, as a user would run it: a fresh
process in an empty folder. The documentation build renders them without running them (mkdocs.yml)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("plot_*.py"))


def test_the_gallery_is_there():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_at_its_smoke_size(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KINN_EXAMPLES_FULL": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"\d\.\d\de[-+]\d\d", done.stdout), done.stdout  # each prints an error it measured
    assert (tmp_path / "runs" / "examples").is_dir()
