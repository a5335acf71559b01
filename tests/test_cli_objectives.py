"""The objectives subcommands, run in-process through rlvrlens.cli.main."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rlvrlens.cli import main
from rlvrlens.objectives import design, dh, grpo, h


def test_schemes_lists_catalogue(capsys):
    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    for name in ("reinforce", "rloo", "grpo", "raft", "pass_at_k", "log_odds"):
        assert name in out
    assert main(["schemes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"grpo", "raft"}


def test_h_table_json_and_plot(capsys, tmp_path):
    assert main(["h", "--scheme", "grpo", "--M", "16", "--eps", "1e-8", "--t", "0.1", "0.5", "0.9", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(data["h"], h(grpo(16, eps=1e-8), [0.1, 0.5, 0.9]))
    np.testing.assert_allclose(data["dh"], dh(grpo(16, eps=1e-8), [0.1, 0.5, 0.9]))
    plot = tmp_path / "h.png"
    assert main(["h", "--scheme", "raft", "--M", "8", "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 1000
    assert "h_M(t)" in capsys.readouterr().out


def test_design_prints_coefficients_and_error(capsys):
    assert main(["design", "--target", "log(t/(1-t))", "--M", "16"]) == 0
    out = capsys.readouterr().out
    assert "quasi-interpolation" in out and "c_s" in out
    assert main(["design", "--target", "t**2", "--M", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exact"] is True and data["error"] == 0.0


def test_design_minimax_with_a_weight_bound(capsys):
    argv = ["design", "--target", "log(t/(1-t))", "--M", "16", "--method", "minimax", "--max-weight", "20",
            "--interval", "0.05", "0.95"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "minimax (LP, HiGHS) with |a_s|, |b_s| <= 20" in out and "max E[Z^2]" in out
    assert main(argv + ["--monotone"]) == 0
    assert "<= 20 and c_s >= 0" in capsys.readouterr().out
    assert main(argv + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "minimax" and data["max_weight"] == 20.0
    assert max(abs(x) for x in data["scheme"]["b"] + data["scheme"]["a"]) <= 20.0 * (1 + 1e-12)
    quasi = design("log(t/(1-t))", 16, interval=(0.05, 0.95))
    assert data["error"] < quasi.error


def test_new_schemes_from_the_cli(capsys):
    assert main(["h", "--scheme", "maxrl", "--M", "8", "--T", "3", "--t", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["h"][0] == pytest.approx(sum((1 - 0.5**k) / k for k in range(1, 4)))
    assert main(["h", "--scheme", "pkpo", "--M", "8", "--k", "3", "--baseline", "loo", "--t", "0.3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["h"][0] == pytest.approx(1 - 0.7**3)
    assert main(["h", "--scheme", "gpg", "--M", "4", "--p-batch", "0.2", "0.6", "--t", "0.5"]) == 0
    capsys.readouterr()
    assert main(["h", "--scheme", "rloo", "--M", "4", "--dynamic-sampling", "0.5", "--t", "0.3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dh"][0] == pytest.approx(1 / (1 - 2 / 16))  # RLOO's h' = 1, over the kept fraction
    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    for name in ("maxrl", "pkpo", "w_reinforce", "nsr", "f_grpo", "gpg"):
        assert name in out


@pytest.mark.parametrize("argv, message", [
    (["h", "--scheme", "nope", "--M", "4"], "unknown scheme 'nope'"),
    (["h", "--scheme", "raft", "--M", "4", "--eps", "0.1"], "--eps does not apply to scheme 'raft'"),
    (["h", "--scheme", "grpo", "--M", "0"], "M must be an integer >= 1"),
    (["h", "--scheme", "grpo", "--M", "4", "--t", "1.5"], "t must lie in [0, 1]"),
    (["h", "--scheme", "grpo", "--M", "4", "--eps", "-1"], "eps must be in"),
    (["design", "--target=-t", "--M", "4"], "non-decreasing"),
    (["design", "--target", "abs(t)", "--M", "4"], "function 'abs' is not allowed"),
    (["design", "--target", "t", "--M", "4", "--max-weight", "3"], "max_weight applies only"),
    (["h", "--scheme", "maxrl", "--M", "4", "--lam", "0.3"], "--lam does not apply to scheme 'maxrl'"),
])
def test_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "rlvrlens", "h", "--scheme", "reinforce", "--M", "3", "--t", "0.25"],
                         capture_output=True, text=True, check=True).stdout
    assert "0.25" in out


def test_demo_prints_a_progress_line_with_its_time_per_stage(capsys, tmp_path, monkeypatch):
    """``rlvrlens demo`` (what ``make demo`` runs): the objectives stage writes the catalogue figure and
    every layer's stage ends with ``[demo] NAME done (S s; T s in all)`` (the layers stubbed here: each
    is tested where it lives)."""
    import re

    import rlvrlens.commands.demo as demo_command
    import rlvrlens.commands.dynamics as dynamics_command

    called = []
    monkeypatch.setattr(demo_command, "_LAYER_DEMOS", ("dynamics",))
    monkeypatch.setattr(dynamics_command, "demo", lambda out: called.append(out))
    assert main(["demo", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert called == [tmp_path] and (tmp_path / "catalogue_h_curves.png").exists()
    assert re.search(r"\[demo\] objectives done \(\d+ s\)", text)
    assert re.search(r"\[demo\] dynamics done \(\d+ s; \d+ s in all\)", text)
