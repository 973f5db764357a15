"""The documentation runs as written: every shell block of README.md and docs/*.md marked
`<!-- runnable -->` runs, in a copy of the repository's example data, with the freshly built
`balance-split` first on PATH, and exits 0. And docs/layout.md is true of src/.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_reference import REPO, binary

MARK = "<!-- runnable -->"


def runnable_blocks():
    """(page, line, text) of each marked block."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    out = []
    for page in pages:
        lines = page.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            if line.strip() != MARK:
                continue
            indent = line[:len(line) - len(line.lstrip())]
            assert lines[i + 1].strip().startswith("```sh"), f"{page.name}:{i + 1}: {MARK} must precede a ```sh block"
            end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
            body = [l[len(indent):] if l.startswith(indent) else l for l in lines[i + 2:end]]
            out.append((page.relative_to(REPO).as_posix(), i + 2, "\n".join(body)))
    return out


BLOCKS = runnable_blocks()


def test_there_are_runnable_blocks_on_the_front_page_and_in_the_docs():
    pages = {page for page, _, _ in BLOCKS}
    assert "README.md" in pages and len(pages) >= 3, pages


PAGES = sorted({page for page, _, _ in BLOCKS})


@pytest.mark.parametrize("page", PAGES)
def test_runnable_blocks_run_as_written(tmp_path, page):
    """A page's blocks run in order in one copy of the example data (a later block may use
    what an earlier one wrote), with balance-split and this Python first on PATH."""
    for part in ["configs", "splits", "examples", "docs", "tests/golden"]:
        shutil.copytree(REPO / part, tmp_path / part)
    path = os.pathsep.join([str(Path(binary()).parent), str(Path(sys.executable).parent), os.environ["PATH"]])
    env = dict(os.environ, PATH=path)
    for _, line, block in [b for b in BLOCKS if b[0] == page]:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{page}:{line}\n{block}\nstdout: {done.stdout}\nstderr: {done.stderr}"


def test_the_layout_table_is_true_of_the_tree():
    """Every path the table names exists, and every top-level module of src/ is named."""
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:src|tests|bench|python|examples|scripts|configs|splits|patches|fuzz)/[^`]*)`", text))
    missing = sorted(p for p in named if not (REPO / p.rstrip("/")).exists())
    assert not missing, f"docs/layout.md names paths that do not exist: {missing}"
    modules = {p.name for p in (REPO / "src").iterdir()
               if p.suffix == ".rs" or (p.is_dir() and p.name not in ("bin",))}
    for m in sorted(modules):
        stem = m[:-3] if m.endswith(".rs") else m
        assert any(n in (f"src/{stem}.rs", f"src/{stem}/") for n in named), \
            f"docs/layout.md does not describe src/{m}"
