"""The import contract (docs/architecture.md "Layers"): the dependency runs spell <- webapp <- workers.

- spell (the library) imports no Django and nothing of the web app or the workers;
- webapp imports no workers (tasks are sent by name: webapp/taskqueue.py);
- webapp imports no torch at import time (a page or the web server never loads the training stack;
  what needs it imports it inside the function that does).

The layering rules read every module's imports with `ast` (also those inside functions, and
importlib.import_module / __import__ with a literal name); the torch rule imports every webapp
module in a fresh interpreter and looks at sys.modules.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def modules_of(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, wherever it sits."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                out.append((node.lineno, node.args[0].value))
    return out


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in modules_of(package):
        for line, name in imported_names(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return found


def test_the_rule_reader_sees_every_form_of_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import os, workers.relay\nfrom workers import supervisor\nfrom . import sibling\n"
                      "def f():\n    import django.db\n    importlib.import_module('workers.tasks')\n")
    assert [n for _, n in imported_names(sample)] == ["os", "workers.relay", "workers", "django.db", "workers.tasks"]


def test_spell_imports_no_django_and_nothing_of_the_web_app_or_the_workers():
    assert violations("spell", ("django", "webapp", "workers", "celery", "channels")) == []


def test_webapp_imports_no_workers():
    assert violations("webapp", ("workers",)) == []


@pytest.mark.timeout(120)
def test_webapp_loads_no_torch_and_no_workers_at_import_time():
    names = [module_name(p) for p in modules_of("webapp")]
    script = (
        "import importlib, json, os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings')\n"
        "import django\n"
        "django.setup()\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = ('torch', 'transformers', 'deepspeed', 'vllm', 'sentence_transformers', 'workers')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=110)

    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing the web app loaded {sorted({m.split('.')[0] for m in loaded})}"
