"""``rlvrlens fixed-points`` and ``rlvrlens iterate``, and the demo hook."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlvrlens.cli import main
from rlvrlens.commands.dynamics import demo


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fixed_points_scheme(capsys):
    code, out, _ = run(capsys, "fixed-points", "--scheme", "grpo", "--M", "16", "--beta", "1", "--p-ref", "0.2")
    assert code == 0 and "attracting" in out and "0.6345473542" in out and "yes" in out


def test_fixed_points_population_json(capsys):
    code, out, _ = run(capsys, "fixed-points", "--population", "--eps", "1e-5", "--beta", "1", "--p-ref", "0.2",
                       "--json")
    data = json.loads(out)
    assert code == 0
    assert [fp["type"] for fp in data["fixed_points"]] == ["attracting", "repelling", "attracting"]
    top = data["fixed_points"][-1]
    assert top["p"] == 1.0 and top["logit_p"] > 300 and top["one_minus_p"] < 1e-130


def test_fixed_points_reports_a_cycle(capsys):
    code, out, _ = run(capsys, "fixed-points", "--population", "--beta", "3", "--p-ref", "1e-3")
    assert code == 0 and "2-cycle (attracting" in out and "cycle of period 2" in out


def test_iterate_table_json_and_plot(capsys, tmp_path):
    code, out, _ = run(capsys, "iterate", "--population", "--beta", "1", "--p-ref", "0.2", "--n", "50",
                       "--p0", "0.1")
    assert code == 0 and out.count("\n") > 50
    code, out, _ = run(capsys, "iterate", "--scheme", "raft", "--M", "4", "--beta", "0.5", "--p-ref", "0.3",
                       "--n", "3", "--p0", "0.1", "0.9", "--json", "--plot", str(tmp_path / "traj.png"))
    data = json.loads(out.split("\nwrote")[0])
    assert np.shape(data["p"]) == (2, 4) and (tmp_path / "traj.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["fixed-points", "--population", "--beta", "0", "--p-ref", "0.2"], "beta"),
    (["fixed-points", "--population", "--beta", "1", "--p-ref", "1.5"], "p_ref"),
    (["fixed-points", "--population", "--beta", "1", "--p-ref", "0.2", "--eps", "-1"], "eps"),
    (["fixed-points", "--beta", "1", "--p-ref", "0.2"], "--scheme"),
    (["fixed-points", "--scheme", "raft", "--beta", "1", "--p-ref", "0.2", "--mean-only"], "--population"),
    (["iterate", "--population", "--beta", "nan", "--p-ref", "0.2"], "beta"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_demo(tmp_path, capsys):
    demo(tmp_path)
    out = capsys.readouterr().out
    assert "population GRPO" in out and "cycle of period 2" in out
    assert (tmp_path / "dynamics_trajectories.png").exists()
