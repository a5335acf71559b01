"""Target strings are parsed by a whitelist and never executed (issue 11, items 1 and 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy

from rlvrlens.cli import main
from rlvrlens.objectives import design, parse_target
from rlvrlens.objectives.expression import MAX_LENGTH


def hostile(sentinel: Path) -> list[str]:
    """Strings that would run code, reach Python objects, or take forever if evaluated."""
    s = str(sentinel)
    return [
        f"__import__('os').system('touch {s}')",
        "__import__('os')",
        f"(lambda: __import__('os').system('touch {s}'))()",
        f"[__import__('os').system('touch {s}') for _ in [1]]",
        f"{{__import__('os').system('touch {s}') for _ in [1]}}",
        f"exec(\"open('{s}', 'w')\")",
        f"eval(\"open('{s}', 'w')\")",
        f"open('{s}', 'w')",
        "import os",
        "t; __import__('os')",
        "().__class__.__bases__[0].__subclasses__()",
        "t.__class__.__mro__",
        "log.__globals__",
        "sympy.Symbol('t')",
        "Symbol('t')",
        "globals()",
        "getattr(t, '__class__')",
        "t[0]",
        "{'a': t}",
        "(x := t)",
        "t if t else 1",
        "t @ t",
        "t == t",
        "not t",
        "f'{t}'",
        "'t'",
        "b't'",
        "...",
        "*t",
        "9**9**9",
        "2**2**2**2**2**2",
        "t**(10**10)",
        "(10**100)**(10**3)",
        "t" + "**2" * 40,
        "(" * 300 + "t" + ")" * 300,
        "-" * 200 + "t",
        "t" + "+t" * 600,
        "1e999*t",
        "True*t",
        "1j*t",
    ]


def _refused(target: str) -> str:
    with pytest.raises(ValueError) as info:
        design(target, 8)
    message = str(info.value)
    assert "\n" not in message and message.startswith("target")
    return message


def test_hostile_strings_are_refused_without_running(tmp_path):
    sentinel = tmp_path / "PWNED"
    for target in hostile(sentinel):
        _refused(target)
    assert not sentinel.exists()


def test_hostile_strings_through_the_cli_in_a_fresh_process(tmp_path):
    """A separate interpreter with a time limit: a hang (9**9**9 evaluated) fails the test."""
    sentinel = tmp_path / "PWNED"
    script = (
        "import json, sys\n"
        "from rlvrlens.cli import main\n"
        "codes = [main(['design', '--target=' + s, '--M', '4']) for s in json.loads(sys.argv[1])]\n"
        "print(json.dumps(codes))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, json.dumps(hostile(sentinel))], capture_output=True,
                         text=True, timeout=300, check=True)
    codes = json.loads(out.stdout.strip().splitlines()[-1])
    assert codes == [2] * len(hostile(sentinel))
    assert "Traceback" not in out.stderr
    assert not sentinel.exists()


def test_strings_are_never_given_to_sympify(monkeypatch):
    real = sympy.sympify

    def guarded(a, *args, **kwargs):
        assert not isinstance(a, str), f"sympify called on the string {a!r}"
        return real(a, *args, **kwargs)

    monkeypatch.setattr(sympy, "sympify", guarded)
    monkeypatch.setattr(sympy, "parse_expr", lambda *a, **k: pytest.fail("parse_expr called"), raising=False)
    r = design("log(t/(1-t)) + 2*asin(sqrt(t)) - exp(-t)", 8)
    assert r.error > 0


@pytest.mark.parametrize("text, expected", [
    ("log(t/(1-t))", sympy.log(sympy.Symbol("t") / (1 - sympy.Symbol("t")))),
    ("1 - (1-t)**3", 1 - (1 - sympy.Symbol("t")) ** 3),
    ("0.1*t + pi", sympy.Rational(1, 10) * sympy.Symbol("t") + sympy.pi),
    ("2*asin(sqrt(t))", 2 * sympy.asin(sympy.sqrt(sympy.Symbol("t")))),
    ("E**t - exp(t)", sympy.Integer(0)),
    ("-t**2 + +t", -sympy.Symbol("t") ** 2 + sympy.Symbol("t")),
])
def test_allowed_expressions_parse_to_the_same_sympy(text, expected):
    assert sympy.simplify(parse_target(text) - expected) == 0


@pytest.mark.parametrize("target, match", [
    ("abs(t)", "function 'abs' is not allowed"),
    ("floor(t)", "function 'floor' is not allowed"),
    ("Heaviside(t)", "function 'Heaviside' is not allowed"),
    ("Max(t, 1)", "function 'Max' is not allowed"),
    ("nan*t", "unknown name 'nan'"),
    ("inf*t", "unknown name 'inf'"),
    ("I*t", "unknown name 'I'"),
    ("oo*t", "unknown name 'oo'"),
    ("log(t, 2)", "exactly one positional argument"),
    ("exp(x=t)", "exactly one positional argument"),
    ("sqrt(t - 2)", "real-valued"),
    ("log(t - 2)", "real-valued"),
    ("(t - 2)**(1/2)", "real-valued"),
    ("acos(t + 2)", "real-valued"),
    ("log(0)*t", "non-finite"),
    ("t/0", "division by zero"),
    ("", "empty expression"),
    ("t" * (MAX_LENGTH + 1), "characters long"),
])
def test_non_elementary_complex_and_malformed_targets_are_one_line(target, match):
    assert match in _refused(target)


@pytest.mark.parametrize("expr, match", [
    (sympy.I * sympy.Symbol("t"), "imaginary unit"),
    (sympy.Abs(sympy.Symbol("t")), "Abs is not an elementary"),
    (sympy.floor(sympy.Symbol("t")), "floor is not an elementary"),
    (sympy.Heaviside(sympy.Symbol("t")), "Heaviside is not an elementary"),
    (sympy.nan * sympy.Symbol("t"), "non-finite"),
    (sympy.sqrt(sympy.Symbol("t") - 2), "real-valued"),
])
def test_sympy_targets_are_checked_by_the_same_whitelist(expr, match):
    with pytest.raises(ValueError, match=match):
        design(expr, 8)


def test_cli_prints_one_line_for_a_complex_target(capsys):
    assert main(["design", "--target", "sqrt(t-2)", "--M", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlvrlens design: error: target must be real-valued") and err.count("\n") == 1
