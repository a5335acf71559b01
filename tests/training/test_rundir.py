"""Run directories: never silently replaced or shared; resume after kill -9, a partial line, a
leftover temporary checkpoint; checkpoints that cannot run code."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import rlvrlens
from rlvrlens.core import records
from rlvrlens.training import rundir
from rlvrlens.training.config import TrainConfig
from rlvrlens.training.trainer import MACHINE_METRICS, Trainer, load_policy

SMALL = dict(task="mod", n_prompts=6, steps=4, eval_steps=2, save_steps=2, warm_start_steps=5,
             prompts_per_step=2, num_generations=4)
SRC = str(Path(rlvrlens.__file__).parent.parent)  # the tree under test, for subprocesses


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def strip(rows):
    return [{k: v for k, v in r.items() if k not in MACHINE_METRICS} for r in rows]


def test_a_run_is_not_replaced_without_overwrite(tmp_path):
    out = tmp_path / "run"
    with Trainer(TrainConfig(**{**SMALL, "steps": 1}), out) as t:
        t.train()
    with pytest.raises(rundir.RunDirError, match=r"already holds a run: task 'mod', scheme 'grpo', M = 4, 1 steps, "
                                                 r"1 logged steps \(config.json, log.jsonl"):
        Trainer(TrainConfig(**{**SMALL, "steps": 2}), out)
    (out / "notes.txt").write_text("mine")
    with Trainer(TrainConfig(**{**SMALL, "steps": 2}), out, overwrite=True) as t:
        t.train()
    assert [r["step"] for r in lines(out / "log.jsonl")] == [1, 2]
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    with pytest.raises(ValueError, match="non-empty path"):
        Trainer(TrainConfig(**SMALL), "")


def test_lock_in_process_and_stale(tmp_path):
    out = tmp_path / "run"
    first = Trainer(TrainConfig(**SMALL), out)
    assert (out / "run.lock").read_text().split()[0] == str(os.getpid())
    with pytest.raises(rundir.RunDirError, match="in use by this process"):
        Trainer(TrainConfig(**SMALL), out, resume=True)
    first.close()
    assert not (out / "run.lock").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(f"{dead.pid} {os.uname().nodename}\n")  # its process is gone: stale
    with Trainer(TrainConfig(**SMALL), out, resume=True) as again:
        assert again.step == 0
    (out / "run.lock").write_text("1 some-other-host\n")  # cannot tell: refused, naming the host
    with pytest.raises(rundir.RunDirError, match="on host some-other-host"):
        Trainer(TrainConfig(**SMALL), out, resume=True)


def test_lock_released_when_the_process_exits(tmp_path):
    code = (f"import sys; sys.path.insert(0, {SRC!r})\n"
            "from pathlib import Path\n"
            "from rlvrlens.training.rundir import RunLock\n"
            "class Owner: pass\n"
            "owner = Owner()\n"
            f"RunLock(Path({str(tmp_path)!r})).acquire(owner)\n"
            f"assert Path({str(tmp_path / 'run.lock')!r}).exists()\n")
    subprocess.run([sys.executable, "-c", code], check=True)  # exits holding the lock
    assert not (tmp_path / "run.lock").exists()


def test_partial_last_line_and_leftover_temporary_checkpoint(tmp_path):
    full = tmp_path / "full"
    with Trainer(TrainConfig(**SMALL), full) as t:
        t.train()
    out = tmp_path / "cut"
    with Trainer(TrainConfig(**SMALL), out) as t:
        t.train(steps=2)
    with open(out / "log.jsonl", "a") as fh:
        fh.write('{"step": 3, "rew')  # killed (or disk full) mid-line
    (out / "checkpoint.pt.tmp").write_bytes(b"half a checkpoint")
    assert records.complete_lines(out / "log.jsonl")[0] == 2
    assert len(records.read_jsonl(out / "log.jsonl")) == 2
    with Trainer(TrainConfig(**SMALL), out, resume=True) as t:
        assert not (out / "checkpoint.pt.tmp").exists()
        assert (out / "log.jsonl").read_text().endswith("}\n")
        t.train()
    assert strip(lines(out / "log.jsonl")) == strip(lines(full / "log.jsonl"))
    assert lines(out / "success.jsonl") == lines(full / "success.jsonl")


def test_steps_extend_a_finished_run(tmp_path):
    full = tmp_path / "full"
    with Trainer(TrainConfig(**{**SMALL, "steps": 6}), full) as t:
        t.train()
    out = tmp_path / "ext"
    with Trainer(TrainConfig(**SMALL), out) as t:
        t.train()
    with pytest.raises(ValueError, match="already at step 4"):
        Trainer(TrainConfig(**{**SMALL, "steps": 3}), out, resume=True)
    with Trainer(TrainConfig(**{**SMALL, "steps": 6}), out, resume=True) as t:
        assert t.step == 4
        t.train()
    assert strip(lines(out / "log.jsonl")) == strip(lines(full / "log.jsonl"))
    assert TrainConfig.from_file(out / "config.json") == TrainConfig(**{**SMALL, "steps": 6})
    assert TrainConfig.from_file(out) == TrainConfig(**{**SMALL, "steps": 6})


class _Plant:
    """Unpickling this would create a file: what a hostile checkpoint does."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_malicious_checkpoint_is_refused_without_running(tmp_path):
    out = tmp_path / "run"
    with Trainer(TrainConfig(**{**SMALL, "steps": 2}), out) as t:
        t.train()
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # our own checkpoints load safely
    assert ckpt["step"] == 2
    planted = tmp_path / "PWNED"
    ckpt["rng"]["python"] = _Plant(str(planted))
    torch.save(ckpt, out / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError):  # the unsafe loader would run it; ours refuses
        torch.load(out / "checkpoint.pt", weights_only=True)
    with pytest.raises(ValueError, match="refused"):
        load_policy(out)
    with pytest.raises(ValueError, match="refused"):
        Trainer(TrainConfig(**{**SMALL, "steps": 2}), out, resume=True)
    assert not planted.exists()


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {src!r})
    import torch
    torch.set_num_threads(1)
    from rlvrlens.training import Trainer, TrainConfig
    out, where, kill_step = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t = Trainer(TrainConfig(**{config!r}), out, resume=True)
    real = os.replace
    def replace(a, b):  # "checkpoint": die after the temporary checkpoint is written, before its rename
        if where == "checkpoint" and str(a).endswith("checkpoint.pt.tmp") and t.step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        real(a, b)
    os.replace = replace
    def die(trainer, metrics):  # "step": die after the step's log lines
        if where == "step" and trainer.step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
    t.train(callbacks=[die])
""")


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    """A subprocess is SIGKILLed inside its second checkpoint write (step 4); the same command
    resumes it and is SIGKILLed again after logging step 5; the third run finishes. The logs equal
    an uninterrupted run's line by line, and so do the final weights."""
    config = {**SMALL, "steps": 6}
    with Trainer(TrainConfig(**config), tmp_path / "full") as t:  # same ops, one thread: bitwise equal
        t.train()
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(src=SRC, config=config))
    out = tmp_path / "killed"

    def run(where, step):
        return subprocess.run([sys.executable, str(script), str(out), where, str(step)]).returncode

    assert run("checkpoint", 4) == -signal.SIGKILL
    assert (out / "run.lock").exists() and (out / "checkpoint.pt.tmp").exists()
    assert [r["step"] for r in lines(out / "log.jsonl")] == [1, 2, 3, 4]
    assert run("step", 5) == -signal.SIGKILL  # resumed from step 2 (stale lock, leftover tmp)
    assert [r["step"] for r in lines(out / "log.jsonl")] == [1, 2, 3, 4, 5]
    assert run("none", 0) == 0  # resumed from step 4
    for name in ("log.jsonl", "success.jsonl"):
        got, want = strip(lines(out / name)), strip(lines(tmp_path / "full" / name))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a == b
    assert not (out / "checkpoint.pt.tmp").exists() and not (out / "run.lock").exists()
    a, _, _ = load_policy(out)
    b, _, _ = load_policy(tmp_path / "full")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
