"""``rlvrlens train`` / ``evaluate`` and the layering rules."""

import json
import subprocess
import sys

import numpy as np
from rlvrlens.cli import main

FAST = ["--task", "mod", "--n-prompts", "6", "--warm-start-steps", "5", "--prompts-per-step", "2",
        "--quiet"]


def test_train_then_evaluate_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--scheme", "grpo", "--M", "4", "--beta", "0.04", "--steps", "2",
                 "--eval-steps", "1", "--eps", "0.01", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["num_generations"] == 4 and config["scheme_params"] == {"eps": 0.01} and config["beta"] == 0.04
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "exact" and result["step"] == 2 and len(result["p"]) == 6
    assert main(["evaluate", str(out / "model"), "--task", "mod", "--n-prompts", "6", "--json"]) == 0
    assert np.allclose(json.loads(capsys.readouterr().out)["p"], result["p"], atol=1e-6)
    assert main(["train", *FAST, "--scheme", "grpo", "--M", "4", "--beta", "0.04", "--steps", "3",
                 "--eval-steps", "1", "--eps", "0.01", "--out", str(out), "--resume"]) == 2  # config differs
    assert "different config" in capsys.readouterr().err


def test_train_from_toml_and_errors(tmp_path, capsys):
    f = tmp_path / "c.toml"
    f.write_text('scheme = "raft"\nnum_generations = 3\nsteps = 1\n')
    assert main(["train", *FAST, "--config", str(f), "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["scheme"] == "raft"
    assert main(["train", *FAST, "--scheme", "nope", "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown scheme" in capsys.readouterr().err
    assert main(["train", *FAST, "--scheme", "raft", "--eps", "0.1", "--steps", "1", "--out", str(tmp_path / "y")]) == 2
    assert "eps" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2


def test_objectives_and_cli_do_not_import_torch():
    code = ("import sys, rlvrlens.objectives, rlvrlens.training.config, rlvrlens.cli; rlvrlens.cli.build_parser(); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_demo_writes_logs_and_curve(tmp_path):
    from rlvrlens.commands.training import demo

    demo(tmp_path, steps=4)  # the real demo runs 60 steps; success rising is tested in test_trainer
    assert (tmp_path / "train" / "success.png").stat().st_size > 0
    assert len((tmp_path / "train" / "log.jsonl").read_text().splitlines()) == 4
