"""Schemes named in a configuration block (rlvrlens.objectives.spec): what verl's ``algorithm.rlvrlens``
and ``explain --verl-config`` read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlvrlens.cli import main
from rlvrlens.objectives import design, get_scheme, load_scheme, log_odds, scheme_from_description, scheme_spec


@pytest.mark.parametrize("M", [1, 2, 5, 8])
def test_catalogue_name_builds_the_catalogue_scheme_for_every_size(M):
    spec = scheme_spec({"scheme": "maxrl", "params": {"T": 1}})
    assert spec.build(M) == get_scheme("maxrl", M, T=1)
    assert spec.build(M) is spec.build(M)  # cached


def test_target_builds_the_design_for_every_size():
    spec = scheme_spec({"target": "log(t/(1-t))", "design": {"method": "minimax", "max_weight": 20,
                                                             "interval": [0.05, 0.95]}}, M=8)
    for M in (4, 8):
        want = design("log(t/(1-t))", M, method="minimax", max_weight=20, interval=(0.05, 0.95)).scheme
        assert spec.build(M) == want
    assert spec.describe() == {"target": "log(t/(1-t))",
                               "design": {"method": "minimax", "max_weight": 20, "interval": (0.05, 0.95)}}


def test_saved_file_is_what_design_json_printed(tmp_path, capsys):
    assert main(["design", "--target", "log(t/(1-t))", "--M", "6", "--json"]) == 0
    path = tmp_path / "s.json"
    path.write_text(capsys.readouterr().out)
    want = design("log(t/(1-t))", 6).scheme
    got = load_scheme(path)
    assert (got.M, got.name, dict(got.params)) == (6, want.name, dict(want.params))
    np.testing.assert_array_equal(got.a, want.a)
    np.testing.assert_array_equal(got.b, want.b)
    spec = scheme_spec({"scheme_file": str(path)}, M=6)
    assert spec.build(6) is spec.saved and spec.describe() == {"scheme_file": str(path)}
    with pytest.raises(ValueError, match=r"^algorithm.rlvrlens.scheme_file: .* holds a scheme for groups of M = 6 "
                                         r"answers, got a group of 8;"):
        spec.build(8)
    assert scheme_from_description(json.loads(json.dumps(log_odds(3).describe()))) == log_odds(3)


@pytest.mark.parametrize("block,message", [
    ({}, "algorithm.rlvrlens: give one of scheme, target, scheme_file (got none)"),
    ({"scheme": "rloo", "target": "t"},
     "algorithm.rlvrlens: give one of scheme, target, scheme_file (got scheme, target)"),
    ({"scheme": "rloo", "design": {}}, "algorithm.rlvrlens: design do(es) not apply with 'scheme'"),
    ({"scheme": "grpoo"}, "algorithm.rlvrlens.scheme: unknown scheme 'grpoo'; the catalogue: reinforce,"),
    ({"scheme": "grpo", "params": {"k": 2}}, "algorithm.rlvrlens.params: unknown option(s) k for scheme 'grpo'; "
                                             "it takes: eps, std, eps_inside_sqrt"),
    ({"scheme": "grpo", "params": [1]}, "algorithm.rlvrlens.params must be a mapping, got list"),
    ({"target": "t", "design": {"steps": 3}}, "algorithm.rlvrlens.design: unknown option(s) steps"),
    ({"target": 3}, "algorithm.rlvrlens.target must be a non-empty string, got 3"),
    ({"scheme_file": "/no/such/file.json"}, "algorithm.rlvrlens.scheme_file: cannot read /no/such/file.json"),
    ({"scheme": "pass_at_k", "params": {"k": 9}}, "algorithm.rlvrlens: scheme 'pass_at_k' for groups of M = 8: "),
    ({"target": "1 - t"}, "algorithm.rlvrlens: target '1 - t' for groups of M = 8: target must be non-decreasing"),
])
def test_errors_are_one_line_naming_the_key(block, message):
    with pytest.raises(ValueError) as err:
        scheme_spec(block, M=8)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_file_that_is_not_a_scheme(tmp_path):
    (tmp_path / "x.json").write_text('{"M": 2, "a": [0, 0]}')
    with pytest.raises(ValueError, match=r"not a weight scheme \(it lacks b\); save one with rlvrlens design --json"):
        load_scheme(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("M: 2")
    with pytest.raises(ValueError, match=r"is not JSON"):
        load_scheme(tmp_path / "y.json")
