"""Run directories: never silently replaced or shared; resume after kill -9, a partial line, a
leftover temporary checkpoint; checkpoints that cannot run code."""

import errno
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


# --- issue 23: never remove what a run did not write; a resume is the recorded run; a full disk ------------
def test_overwrite_never_removes_files_no_run_wrote(tmp_path, capsys):
    """A foreign file inside model/ and a foreign config.json: --overwrite refuses, naming them,
    and removes nothing (the old code deleted both)."""
    from rlvrlens.cli import main

    out = tmp_path / "run"
    with Trainer(TrainConfig(**{**SMALL, "steps": 1}), out) as t:
        t.train()
    manifest = json.loads((out / "model" / rundir.MODEL_MANIFEST).read_text())["files"]
    assert "model.safetensors" in manifest and rundir.foreign_files(out) == []
    (out / "model" / "important.bin").write_bytes(b"not ours")
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(rundir.RunDirError, match=r"no run wrote: model/important.bin"):
        Trainer(TrainConfig(**SMALL), out, overwrite=True)
    assert main(["train", "--out", str(out), "--overwrite", "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model/important.bin" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing removed, the run's files neither
    rundir.remove_run(out)  # the run's own files go; the foreign one stays, and so does its folder
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["model", "model/important.bin"]

    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "gpt2", "vocab_size": 50257}')  # a model's config, say
    for kwargs in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(rundir.RunDirError, match="no run wrote: config.json"):
            Trainer(TrainConfig(**SMALL), other, **kwargs)
    assert json.loads((other / "config.json").read_text())["vocab_size"] == 50257


def test_a_model_folder_saved_before_manifests_is_the_runs(tmp_path):
    """model/ of an older run (no manifest): the names save_pretrained writes are the run's."""
    out = tmp_path / "run"
    with Trainer(TrainConfig(**{**SMALL, "steps": 1}), out) as t:
        t.train()
    (out / "model" / rundir.MODEL_MANIFEST).unlink()
    assert rundir.foreign_files(out) == []
    with Trainer(TrainConfig(**{**SMALL, "steps": 1}), out, overwrite=True) as t:
        t.train()
    assert (out / "model" / rundir.MODEL_MANIFEST).exists()


KILLED_IN_WARM_START = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {src!r})
    from rlvrlens.training import trainer, TrainConfig
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    trainer.warm_start = die
    trainer.Trainer(TrainConfig(**{config!r}), sys.argv[1])
""")


def test_killed_during_the_warm_start_resumes_the_recorded_run(tmp_path, capsys):
    """Killed while warm-starting (before any step), `train --out DIR --resume` trains the run that
    was asked for, not the defaults (the old code wrote config.json only after the warm start)."""
    from rlvrlens.cli import main

    asked = {**SMALL, "task": "add", "scheme": "raft", "num_generations": 4, "beta": 0.1, "steps": 2}
    script = tmp_path / "kill.py"
    script.write_text(KILLED_IN_WARM_START.format(src=SRC, config=asked))
    out = tmp_path / "run"
    assert subprocess.run([sys.executable, str(script), str(out)]).returncode == -signal.SIGKILL
    assert TrainConfig.from_file(out) == TrainConfig(**asked)  # recorded before the warm start
    assert not (out / "config.json.tmp").exists()
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
    assert TrainConfig.from_file(out) == TrainConfig(**asked)
    assert [r["step"] for r in lines(out / "log.jsonl")] == [1, 2]
    capsys.readouterr()
    (tmp_path / "empty").mkdir()  # nothing recorded (killed before config.json): refused, not the defaults
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume", "--quiet"]) == 2
    assert "holds no recorded run" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "config.json").exists()


def test_a_setup_that_fails_before_any_step_leaves_no_run(tmp_path):
    """A bad model: the config the trainer recorded is taken back, so the corrected command runs
    without --overwrite."""
    out = tmp_path / "run"
    bad = tmp_path / "bad_model"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot load model"):
        Trainer(TrainConfig(**{**SMALL, "model": str(bad)}), out)
    assert sorted(p.name for p in out.iterdir()) == []
    with Trainer(TrainConfig(**{**SMALL, "steps": 1}), out) as t:
        t.train()


def _full_disk(exc_type):
    def save(obj, f, *args, **kwargs):  # as torch.save on a full disk: part written, then its error
        f.write(b"PK\x03\x04 part of a checkpoint")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise exc_type("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    return save


def test_disk_full_during_a_checkpoint_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    """torch reports a failed write to a file object as a RuntimeError raised while handling the
    OSError: one line saying the disk is full, and no checkpoint.pt.tmp."""
    from rlvrlens.training import trainer as trainer_module

    out = tmp_path / "run"
    t = Trainer(TrainConfig(**{**SMALL, "steps": 1, "warm_start_steps": 0}), out)
    monkeypatch.setattr(trainer_module.torch, "save", _full_disk(RuntimeError))
    with pytest.raises(OSError, match=r"cannot write .*checkpoint.pt: disk full") as info:
        t.save()
    assert info.value.errno == errno.ENOSPC and "\n" not in str(info.value)
    assert not (out / "checkpoint.pt.tmp").exists() and not (out / "checkpoint.pt").exists()
    t.close()


def test_library_errors_that_carry_an_os_error_are_one_line():
    """safetensors names the OS error only in its text; a ValueError of ours is never taken for one."""
    class SafetensorError(Exception):
        pass

    def fail():
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    with pytest.raises(OSError, match="cannot write model: disk full") as info:
        rundir.guard_write("model", fail)
    assert info.value.errno == errno.ENOSPC

    def ours():
        try:
            raise FileNotFoundError(2, "No such file or directory")
        except FileNotFoundError:
            raise ValueError("a bad value")

    with pytest.raises(ValueError, match="a bad value"):
        rundir.guard_write("x", ours)


def _tmpfs(path, size):
    """Mount a tmpfs of ``size`` at ``path`` (root only); False where that is not possible here."""
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_real_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys):
    """A 256 KB tmpfs: the checkpoint (about 1.6 MB) does not fit. Needs root and mount."""
    from rlvrlens.cli import main

    disk = tmp_path / "disk"
    if not _tmpfs(disk, "256k"):
        pytest.skip("mounting a tmpfs needs root (the monkeypatched test covers the logic)")
    try:
        code = main(["train", "--out", str(disk / "run"), "--task", "mod", "--n-prompts", "4", "--steps", "1",
                     "--warm-start-steps", "0", "--prompts-per-step", "2", "--num-generations", "4", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "disk full" in err, err
        left = sorted(p.name for p in (disk / "run").iterdir())
        assert not [name for name in left if name.endswith(".tmp")], left
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)  # even if a failed write left a file open
