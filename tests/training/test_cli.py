"""``rlvrlens train`` / ``evaluate``: resume from the directory alone, errors as one line, layering."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rlvrlens.cli import main
from rlvrlens.training import trainer as trainer_module

FAST = ["--task", "mod", "--n-prompts", "6", "--warm-start-steps", "5", "--prompts-per-step", "2",
        "--quiet"]


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_train_then_evaluate_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *FAST, "--scheme", "grpo", "--M", "4", "--beta", "0.04", "--steps", "2",
                 "--eval-steps", "1", "--eps", "0.01", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["num_generations"] == 4 and config["scheme_params"] == {"eps": 0.01} and config["beta"] == 0.04
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    assert not (out / "run.lock").exists()  # released on exit
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "exact" and result["step"] == 2 and len(result["p"]) == 6
    assert main(["evaluate", "--run", str(out), "--json"]) == 0  # the README's spelling
    assert json.loads(capsys.readouterr().out)["p"] == result["p"]
    assert main(["evaluate", str(out / "model"), "--task", "mod", "--n-prompts", "6", "--json"]) == 0
    assert np.allclose(json.loads(capsys.readouterr().out)["p"], result["p"], atol=1e-6)
    # a different config is reported field by field
    assert main(["train", *FAST, "--scheme", "grpo", "--M", "4", "--beta", "0.1", "--steps", "3",
                 "--eval-steps", "1", "--eps", "0.01", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "different config (beta: 0.04 -> 0.1)" in err and err.count("\n") == 1
    # --resume alone continues the recorded config; --steps extends the finished run
    assert main(["train", "--out", str(out), "--resume", "--steps", "3", "--quiet"]) == 0
    assert [r["step"] for r in lines(out / "log.jsonl")] == [1, 2, 3]
    assert json.loads((out / "config.json").read_text()) == {**config, "steps": 3}
    # the recorded config can be given back (JSON), and training there again needs --overwrite
    assert main(["train", "--config", str(out / "config.json"), "--out", str(out), "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "task 'mod'" in err and "--overwrite" in err
    assert main(["train", "--config", str(out / "config.json"), "--out", str(out), "--steps", "1",
                 "--quiet", "--overwrite"]) == 0
    assert [r["step"] for r in lines(out / "log.jsonl")] == [1]


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


def _corrupt_model(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text("{not json")
    return d


def _error_cases(tmp_path):
    """(argv, text the one-line message must contain) for mistakes a user makes with train/evaluate."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("steps = = 1\n")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("stepz = 1\n")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("[1, 2]")
    bad_ckpt = tmp_path / "bad.pt"
    bad_ckpt.write_bytes(b"PK\x03\x04 not really a zip")
    not_ckpt = tmp_path / "plain.pt"
    torch.save({"hello": torch.zeros(1)}, not_ckpt)
    bad_task = tmp_path / "bad.jsonl"
    bad_task.write_text('{"prompt": 1}\n')
    task_dir = tmp_path / "dir.jsonl"
    task_dir.mkdir()
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"prompt": "caf\xe9", "answer": "1"}\n')
    binary_toml = tmp_path / "binary.toml"
    binary_toml.write_bytes(b"\xff\xfe\x00steps")
    t = ["train", "--quiet", "--steps", "1"]
    out = ["--out", str(tmp_path / "o")]
    return [
        (t + ["--out", ""], "non-empty path"),
        (t + ["--out", str(a_file)], "is not a directory"),
        (t + ["--out", str(a_file / "sub")], "cannot write to run directory"),
        (t + out + ["--config", str(tmp_path / "nope.toml")], "does not exist"),
        (t + out + ["--config", str(bad_toml)], "not valid TOML"),
        (t + out + ["--config", str(unknown)], "stepz"),
        (t + out + ["--config", str(bad_json)], "must hold an object"),
        (t + out + ["--config", str(tmp_path)], "config.json"),
        (t + out + ["--task", str(tmp_path / "none.jsonl")], "task file"),
        (t + out + ["--task", str(bad_task)], "prompt"),
        (t + out + ["--task", "nope"], "task must be one of"),
        (t + out + ["--task", str(task_dir)], "cannot read task file"),
        (t + out + ["--task", str(latin)], "not UTF-8"),
        (t + out + ["--config", str(binary_toml)], "config file"),
        (t + out + ["--verifier", "numeric"], "verifier 'numeric' applies to JSONL tasks only"),
        (t + out + ["--model", str(tmp_path / "no_model")], "does not exist"),
        (t + out + ["--model", str(_corrupt_model(tmp_path, "m1"))], "cannot load model"),
        (t + out + ["--device", "gpu"], "device must be"),
        (t + out + ["--device", "cuda:99"], "not available"),
        (t + out + ["--precision", "fp16"], "'fp16' needs a CUDA device"),
        (t + out + ["--precision", "int4"], "precision must be"),
        (t + out + ["--M", str(10**9)], "memory"),
        (t + out + ["--beta", "0.1", "--kl-estimator", "exact"], "sequence_kl"),
        (t + out + ["--beta", "0.1", "--kl-estimator", "exact", "--kl-in-reward"], "kl_in_reward"),
        (t + out + ["--loss-aggregation", "mean"], "loss_aggregation must be"),
        (t + out + ["--resume", "--overwrite"], "exclude each other"),
        (t + out + ["--adam-beta2", "1.5"], "adam_beta2"),
        (t + out + ["--gradient-checkpointing", "--arch", "gpt3"], "arch"),
        (["evaluate", str(tmp_path / "gone")], "does not exist"),
        (["evaluate", str(bad_ckpt)], "is not a checkpoint (not a torch.save archive)"),
        (["evaluate", str(not_ckpt)], "not an rlvrlens checkpoint"),
        (["evaluate", str(_corrupt_model(tmp_path, "m2")), "--task", "mod"], "cannot load model"),
        (["evaluate", str(tmp_path), "--task", "mod", "--verifier", "numeric"], "applies to JSONL tasks only"),
        (["evaluate", str(tmp_path)], "holds no run (no checkpoint.pt, config.json or model/)"),
        (["evaluate", str(tmp_path / "m1")], "read as a model directory (save_pretrained), which records no task"),
        (["evaluate"], "needs a run directory"),
        (["evaluate", str(tmp_path), "--run", str(a_file)], "give the run once"),
        # issue 23: sizes, floats beyond float32, resume without a record, devices
        (t + out + ["--width", "65536"], "of it for the model (2 layers of width 65536"),
        (t + out + ["--width", "65536"], "lower width or n_layer"),
        (t + out + ["--n-layer", "1000000"], "n_layer or width"),
        (t + out + ["--n-prompts", "1000000000"], "n_prompts must be an integer >= 1 and <= 100000"),
        (t + out + ["--task", "rg:basic_arithmetic?size=1000000000"], "size must be an integer >= 1 and <= 100000"),
        (t + out + ["--temperature", "1e-320"], "temperature must be 0 or between 1.18e-38 and 3.4e+38"),
        (t + out + ["--epsilon-high", "1e308"], "epsilon_high must be 0 or between"),
        (t + out + ["--learning-rate", "inf"], "learning_rate must be finite"),
        (t + out + ["--warm-start-fraction", "nan"], "warm_start_fraction must be finite"),
        (t + out + ["--warm-start-lr", "1e-320"], "warm_start_lr must be 0 or between"),
        (t + ["--out", str(tmp_path / "never_run"), "--resume"], "holds no recorded run (no config.json)"),
        (["evaluate", str(_saved_model(tmp_path)), "--task", "cot", "--K", "1000000000"],
         "K = 1000000000 is too large: sampling 24 prompts x K completions"),
        (["evaluate", str(_saved_model(tmp_path)), "--task", "mod", "--n-prompts", "1000000000"],
         "--n-prompts must be an integer >= 1 and <= 100000"),
        (["validate", "--preset", "tiny", "--out", str(tmp_path / "v"), "--device", "cuda"], "no CUDA GPU is visible"),
    ]


def _saved_model(tmp_path):
    """A tiny model folder (save_pretrained), made once per test directory."""
    d = tmp_path / "saved_model"
    if not d.exists():
        from rlvrlens.training.policy import CausalLMPolicy

        CausalLMPolicy.from_config("gpt2", n_layer=1, width=16, n_head=2, seed=0).save_pretrained(d)
    return d


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """Every mistake: exit code 2 and one line ``rlvrlens CMD: error: ...`` naming the thing at fault,
    found before any model is built where the mistake is in the run's inputs."""
    if torch.cuda.is_available():
        pytest.skip("the device and fp16 cases assume a machine without CUDA")
    cases = _error_cases(tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the input was checked")

    monkeypatch.setattr(trainer_module.CausalLMPolicy, "from_config", no_model)
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"rlvrlens {argv[0]}: error: "), (argv, err)
        assert needle in err, (argv, needle, err)
    assert len(cases) >= 30


def test_disk_full_says_so(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main(["train", *FAST, "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "success.jsonl" in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "run.lock").exists()


def test_a_second_concurrent_run_refuses_at_once(tmp_path, capsys):
    """A live process holds the lock: the second run refuses before building anything; a stale
    lock (its process is gone) is taken over."""
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "run.lock").write_text(f"{holder.pid} {os.uname().nodename}\n")
        assert main(["train", *FAST, "--steps", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"is in use by process {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()
    assert main(["train", *FAST, "--steps", "1", "--out", str(out)]) == 0  # now stale
    assert not (out / "run.lock").exists()


def test_demo_writes_logs_and_curve(tmp_path):
    from rlvrlens.commands.training import demo

    demo(tmp_path, steps=4)  # the real demo runs 60 steps; success rising is tested in test_trainer
    demo(tmp_path, steps=4)  # rerunning the demo replaces its own run
    assert (tmp_path / "train" / "success.png").stat().st_size > 0
    assert len((tmp_path / "train" / "log.jsonl").read_text().splitlines()) == 4
