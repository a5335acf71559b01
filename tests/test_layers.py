"""The layer contract as a test: every module's imports and attribute accesses, read with ``ast``.

The floors, lowest first (also in ``rlvrlens/__init__.py``'s docstring); a module may import its own
floor and those listed for it, nothing else of rlvrlens::

    core                                  (checks, kl, logit, records: imports nothing above)
    objectives  -> core
    dynamics    -> core, objectives
    explain     -> core, objectives, dynamics                 (no torch)
    figures     -> core, objectives, dynamics, explain        (data in, Figure out; no torch)
    training    -> core, objectives, dynamics                 (torch, transformers, trl, verl)
    forecast    -> core, objectives, dynamics, explain, training   (probes of a model; torch)
    validation  -> core, objectives, dynamics, explain, figures, training, forecast
    paper_repro -> all of the above
    commands    -> all of the above;  cli -> commands and all of the above

Further rules: torch, transformers, trl and verl are imported (lazily inside a function included)
only under training, forecast and validation; no module imports another module's private name
(``from x import _y``) or reads a private attribute of an object it does not own (``obj._y`` for
``obj`` other than ``self``/``cls``/``super()`` and other than a third-party module); no module
outside training assigns an attribute that a :class:`~rlvrlens.training.Trainer` sets on itself
(``trainer.optimizer = ...``: make it configuration). A planted violation of each rule is detected
(the tests at the end).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "transformers", "trl", "verl")
#: Where torch, transformers, trl and verl may be imported.
HEAVY_OK = ("rlvrlens.training", "rlvrlens.forecast", "rlvrlens.validation")
_BELOW = {
    "rlvrlens.core": (),
    "rlvrlens.objectives": ("rlvrlens.core",),
    "rlvrlens.dynamics": ("rlvrlens.core", "rlvrlens.objectives"),
    "rlvrlens.explain": ("rlvrlens.core", "rlvrlens.objectives", "rlvrlens.dynamics"),
    "rlvrlens.figures": ("rlvrlens.core", "rlvrlens.objectives", "rlvrlens.dynamics", "rlvrlens.explain"),
    "rlvrlens.training": ("rlvrlens.core", "rlvrlens.objectives", "rlvrlens.dynamics"),
    "rlvrlens.forecast": ("rlvrlens.core", "rlvrlens.objectives", "rlvrlens.dynamics", "rlvrlens.explain",
                          "rlvrlens.training"),
}
_BELOW["rlvrlens.validation"] = (*_BELOW["rlvrlens.figures"], "rlvrlens.figures", "rlvrlens.training",
                                 "rlvrlens.forecast")
_BELOW["rlvrlens.paper_repro"] = (*_BELOW["rlvrlens.validation"], "rlvrlens.validation")
_BELOW["rlvrlens.commands"] = (*_BELOW["rlvrlens.paper_repro"], "rlvrlens.paper_repro")
_BELOW["rlvrlens.cli"] = (*_BELOW["rlvrlens.commands"], "rlvrlens.commands")
#: module prefix -> the rlvrlens subpackages/modules it may import (besides itself)
ALLOWED: dict[str, tuple[str, ...]] = _BELOW
#: Violations that exist on main today, each with its owner. Every entry must still be a violation
#: (test_known_violations_are_real): remove it when its owner fixes it.
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool):
    """``(imported module, imported name or None, bound name)`` for every import, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, alias.asname or alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for alias in node.names:
                yield base, alias.name, alias.asname or alias.name


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def trainer_attributes(root: Path) -> set[str]:
    """The attributes :class:`Trainer` sets on itself (``self.X = ...`` in ``training/trainer.py``)."""
    tree = ast.parse((root / "rlvrlens" / "training" / "trainer.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id == "self":
            names.add(node.attr)
    return names


def _private_reads(tree: ast.AST, third_party: set[str]):
    """``(object, attribute)`` for every ``obj._attr`` (not dunder) whose object is not ``self``/``cls``,
    ``super()`` or a third-party module bound by an import."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in {"self", "cls"} | third_party:
            continue
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            continue
        yield (value.id if isinstance(value, ast.Name) else ast.unparse(value)), node.attr


def _attribute_stores(tree: ast.AST):
    """``(object, attribute)`` for every assignment to an attribute of an object other than ``self``/``cls``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            value = node.value
            if not (isinstance(value, ast.Name) and value.id in ("self", "cls")):
                yield ast.unparse(value), node.attr


def violations(root: Path) -> set[tuple[str, str]]:
    """Every breach of the contract in the package tree under ``root`` (``root/rlvrlens/...``)."""
    found = set()
    owned = trainer_attributes(root) if (root / "rlvrlens" / "training" / "trainer.py").exists() else set()
    for path in sorted((root / "rlvrlens").rglob("*.py")):
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        third_party = set()
        for target, name, bound in _imports(tree, module, path.name == "__init__.py"):
            top = target.split(".")[0]
            if not _inside(target, "rlvrlens") and name is None:
                third_party.add(bound)
            if top in HEAVY and not any(_inside(module, ok) for ok in HEAVY_OK):
                found.add((module, f"imports {top}"))
            if name is not None and name.startswith("_") and _inside(target, "rlvrlens") and target != "__future__":
                found.add((module, f"imports private name {target}.{name}"))
            if not _inside(target, "rlvrlens") or target == "rlvrlens":
                continue
            full = f"{target}.{name}" if name else target
            for prefix, allowed in ALLOWED.items():
                if _inside(module, prefix) and not _inside(target, prefix):
                    if not any(_inside(target, a) or _inside(full, a) for a in allowed):
                        found.add((module, f"imports {target} (above its layer)"))
        for obj, attr in _private_reads(tree, third_party):
            found.add((module, f"reads private attribute {obj}.{attr}"))
        if not _inside(module, "rlvrlens.training"):
            for obj, attr in _attribute_stores(tree):
                if attr in owned:
                    found.add((module, f"sets {obj}.{attr} (a Trainer's own attribute: make it configuration)"))
    return found


def test_the_package_keeps_its_layers():
    new = violations(SRC) - KNOWN
    assert not new, "\n".join(f"{m}: {what}" for m, what in sorted(new))


def test_known_violations_are_real():
    """A fixed violation must leave KNOWN, so the list only shrinks."""
    stale = KNOWN - violations(SRC)
    assert not stale, f"fixed, remove from KNOWN: {sorted(stale)}"


def test_every_subpackage_has_a_floor():
    """A new subpackage must be placed on a floor (else nothing checks what it imports)."""
    tops = {p.name for p in (SRC / "rlvrlens").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    tops |= {p.stem for p in (SRC / "rlvrlens").glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert {f"rlvrlens.{t}" for t in tops} <= set(ALLOWED), sorted({f"rlvrlens.{t}" for t in tops} - set(ALLOWED))


def _plant(tmp_path: Path, files: dict[str, str]) -> set[tuple[str, str]]:
    for rel, text in files.items():
        path = tmp_path / "rlvrlens" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in {p.parent for p in (tmp_path / "rlvrlens").rglob("*.py")} | {tmp_path / "rlvrlens"}:
        (folder / "__init__.py").touch()
    return violations(tmp_path)


@pytest.mark.parametrize("rel,text,expected", [
    ("core/a.py", "from rlvrlens.objectives import h\n", "above its layer"),
    ("objectives/a.py", "from rlvrlens.dynamics import success_map\n", "above its layer"),
    ("objectives/b.py", "from ..training import Trainer\n", "above its layer"),
    ("dynamics/a.py", "import rlvrlens.training.trainer\n", "above its layer"),
    ("dynamics/b.py", "from rlvrlens.explain import explain\n", "above its layer"),
    ("explain/a.py", "from rlvrlens.training import TrainConfig\n", "above its layer"),
    ("explain/b.py", "from rlvrlens.figures import style\n", "above its layer"),
    ("figures/a.py", "def f():\n    from rlvrlens.validation import report\n", "above its layer"),
    ("figures/b.py", "from rlvrlens.training.success import wilson_interval\n", "above its layer"),
    ("training/a.py", "from rlvrlens.forecast import probes\n", "above its layer"),
    ("training/b.py", "from rlvrlens.explain import explain\n", "above its layer"),
    ("forecast/a.py", "from rlvrlens.validation import runner\n", "above its layer"),
    ("validation/a.py", "from rlvrlens.paper_repro import mroueh\n", "above its layer"),
    ("paper_repro/a.py", "from rlvrlens.commands import explain\n", "above its layer"),
    ("commands/a.py", "from rlvrlens.cli import main\n", "above its layer"),
    ("dynamics/c.py", "def f():\n    import torch\n", "imports torch"),
    ("commands/b.py", "from transformers import AutoModel\n", "imports transformers"),
    ("paper_repro/b.py", "import trl\n", "imports trl"),
    ("explain/c.py", "import torch\n", "imports torch"),
    ("dynamics/d.py", "from rlvrlens.dynamics.maps import _LOGIT_CLIP\n", "private name"),
    ("commands/c.py", "from ._common import _SCHEME_FLAGS\n", "private name"),
    ("validation/b.py", "def f(policy):\n    return policy._cache_kw\n", "private attribute policy._cache_kw"),
    ("forecast/b.py", "def f(p):\n    return p._rollout([], None)\n", "private attribute p._rollout"),
    ("validation/c.py", "def f(trainer, opt):\n    trainer.optimizer = opt\n", "sets trainer.optimizer"),
    ("paper_repro/c.py", "def f(t, r):\n    t.ref = r\n", "sets t.ref"),
])
def test_a_planted_violation_is_detected(tmp_path, rel, text, expected):
    trainer = "class Trainer:\n    def __init__(self):\n        self.optimizer = None\n        self.ref = None\n"
    found = _plant(tmp_path, {rel: text, "training/trainer.py": trainer})
    assert any(expected in what for _, what in found), found


def test_allowed_imports_are_not_flagged(tmp_path):
    found = _plant(tmp_path, {
        "dynamics/a.py": "from rlvrlens.objectives import h\nfrom rlvrlens.core.checks import check_int\n",
        "training/a.py": "import torch\nfrom rlvrlens.dynamics import success_map\n",
        "training/trainer.py": "class Trainer:\n    def __init__(self):\n        self.optimizer = 1\n",
        "forecast/a.py": "import torch\nfrom rlvrlens.training import Trainer\n",
        "figures/a.py": "from rlvrlens.explain import ExplainReport\nfrom rlvrlens.dynamics import Outcome\n",
        "commands/a.py": "import argparse\nfrom rlvrlens.training import Trainer\nfrom rlvrlens.commands.common import x\n"
                         "def f(s: argparse._SubParsersAction):\n    return s\n",
        "validation/a.py": "class R:\n    def g(self):\n        return super()._g(), self._h\n"
                           "def f(rep):\n    rep.claims = []\n",
    })
    assert not found, found
