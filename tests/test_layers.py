"""The layer contract as a test (issue 12 item 7): every module's imports, read with ``ast``.

The graph (also in ``rlvrlens/__init__.py``'s docstring; ``_validation`` is shared by all):

    commands, cli  ->  repro  ->  validation  ->  training  ->  dynamics  ->  objectives
    explain, frameworks, runs  ->  dynamics, objectives (the "dynamics level": no training)
    figures  ->  explain, frameworks, runs, dynamics, objectives (never training or validation)
    validation  ->  figures, explain (data in, Figure out)

Rules checked: objectives imports nothing above it; dynamics only objectives; explain/frameworks/runs
nothing above dynamics; figures never training or validation; nothing outside ``rlvrlens.training`` /
``rlvrlens.validation`` imports torch, transformers or trl (lazily inside a function included); no
module imports another module's private name (``from x import _y``). A planted violation of each
rule is detected (see the tests at the end).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "transformers", "trl")
#: module prefix -> the rlvrlens subpackages/modules it may import (besides itself and _validation)
ALLOWED: dict[str, tuple[str, ...]] = {
    "rlvrlens.objectives": (),
    "rlvrlens.dynamics": ("rlvrlens.objectives",),
    "rlvrlens.explain": ("rlvrlens.objectives", "rlvrlens.dynamics", "rlvrlens.frameworks"),
    "rlvrlens.frameworks": ("rlvrlens.objectives", "rlvrlens.dynamics"),
    "rlvrlens.runs": ("rlvrlens.objectives", "rlvrlens.dynamics", "rlvrlens.explain", "rlvrlens.frameworks"),
    "rlvrlens.training": ("rlvrlens.objectives", "rlvrlens.dynamics"),
    "rlvrlens.validation": ("rlvrlens.objectives", "rlvrlens.dynamics", "rlvrlens.training", "rlvrlens.explain",
                            "rlvrlens.frameworks", "rlvrlens.runs", "rlvrlens.figures"),
    "rlvrlens.figures": ("rlvrlens.objectives", "rlvrlens.dynamics", "rlvrlens.explain", "rlvrlens.frameworks",
                         "rlvrlens.runs"),
}
#: Violations that exist on main today in files other helpers own, each with its owner. Every entry
#: must still be a violation (test_known_violations_are_real): remove it when its owner fixes it.
KNOWN: set[tuple[str, str]] = {
    ("rlvrlens.repro.xiong", "imports torch"),                  # helper "repro"
    ("rlvrlens.commands.training", "imports torch"),            # helper "trainer"
    ("rlvrlens.commands.training", "imports private name rlvrlens.commands._common._SCHEME_FLAGS"),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool):
    """``(imported module, imported name or None)`` for every import, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for alias in node.names:
                yield base, alias.name


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> set[tuple[str, str]]:
    """Every breach of the contract in the package tree under ``root`` (``root/rlvrlens/...``)."""
    found = set()
    for path in sorted((root / "rlvrlens").rglob("*.py")):
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, name in _imports(tree, module, path.name == "__init__.py"):
            top = target.split(".")[0]
            if top in HEAVY and not (_inside(module, "rlvrlens.training") or _inside(module, "rlvrlens.validation")):
                found.add((module, f"imports {top}"))
            if name is not None and name.startswith("_") and _inside(target, "rlvrlens") and target != "__future__":
                found.add((module, f"imports private name {target}.{name}"))
            if not _inside(target, "rlvrlens") or target in ("rlvrlens", "rlvrlens._validation"):
                continue
            full = f"{target}.{name}" if name else target
            for prefix, allowed in ALLOWED.items():
                if _inside(module, prefix) and not _inside(target, prefix):
                    if not any(_inside(target, a) or _inside(full, a) for a in allowed):
                        found.add((module, f"imports {target} (above its layer)"))
            if _inside(module, "rlvrlens.figures") and any(
                    _inside(target, bad) for bad in ("rlvrlens.training", "rlvrlens.validation")):
                found.add((module, f"imports {target} (figures never import training/validation)"))
    return found


def test_the_package_keeps_its_layers():
    new = violations(SRC) - KNOWN
    assert not new, "\n".join(f"{m}: {what}" for m, what in sorted(new))


def test_known_violations_are_real():
    """A fixed violation must leave KNOWN, so the list only shrinks."""
    stale = KNOWN - violations(SRC)
    assert not stale, f"fixed, remove from KNOWN: {sorted(stale)}"


def _plant(tmp_path: Path, files: dict[str, str]) -> set[tuple[str, str]]:
    for rel, text in files.items():
        path = tmp_path / "rlvrlens" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in {p.parent for p in (tmp_path / "rlvrlens").rglob("*.py")} | {tmp_path / "rlvrlens"}:
        (folder / "__init__.py").touch()
    return violations(tmp_path)


@pytest.mark.parametrize("rel,text,expected", [
    ("objectives/a.py", "from rlvrlens.dynamics import success_map\n", "above its layer"),
    ("objectives/b.py", "from ..training import Trainer\n", "above its layer"),
    ("dynamics/a.py", "import rlvrlens.training.trainer\n", "above its layer"),
    ("dynamics/b.py", "from rlvrlens.explain import explain\n", "above its layer"),
    ("explain.py", "from rlvrlens.training import TrainConfig\n", "above its layer"),
    ("figures/a.py", "def f():\n    from rlvrlens.validation import report\n", "figures never import"),
    ("figures/b.py", "from rlvrlens.training.success import wilson_interval\n", "figures never import"),
    ("dynamics/c.py", "def f():\n    import torch\n", "imports torch"),
    ("commands/a.py", "from transformers import AutoModel\n", "imports transformers"),
    ("repro/a.py", "import trl\n", "imports trl"),
    ("training/a.py", "from rlvrlens.validation import experiments\n", "above its layer"),
    ("validation/a.py", "from rlvrlens.repro import mroueh\n", "above its layer"),
    ("dynamics/d.py", "from rlvrlens.dynamics.maps import _LOGIT_CLIP\n", "private name"),
    ("commands/b.py", "from ._common import _SCHEME_FLAGS\n", "private name"),
])
def test_a_planted_violation_is_detected(tmp_path, rel, text, expected):
    found = _plant(tmp_path, {rel: text})
    assert any(expected in what for _, what in found), found


def test_allowed_imports_are_not_flagged(tmp_path):
    found = _plant(tmp_path, {
        "dynamics/a.py": "from rlvrlens.objectives import h\nfrom rlvrlens._validation import check_int\n",
        "training/a.py": "import torch\nfrom rlvrlens.dynamics import success_map\n",
        "figures/a.py": "from rlvrlens.explain import ExplainReport\nfrom rlvrlens.dynamics import Outcome\n",
        "commands/a.py": "from rlvrlens.training import Trainer\nfrom rlvrlens.commands._common import print_json\n",
    })
    assert not found, found
