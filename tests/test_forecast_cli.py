"""``rlvrlens forecast`` (issue 22): the forecast of a run before it starts, then the run, then
``explain --run`` against it; TRL configs mapped to the trainer; refusals. A fresh one-layer GPT-2
on four modular-arithmetic prompts keeps each forecast to seconds."""

import json

import numpy as np
import pytest

from rlvrlens.cli import main
from rlvrlens.explain import ForecastRecord, estimator_point, explain_run
from rlvrlens.objectives import get_preset, get_scheme

TINY = ["--task", "mod", "--n-prompts", "4", "--n-layer", "1", "--width", "32", "--n-head", "2",
        "--warm-start-steps", "30", "--M", "4", "--prompts-per-step", "2", "--learning-rate", "3e-3"]
RUN = TINY + ["--steps", "6", "--beta", "0.2", "--kl-estimator", "k2", "--kl-level", "sequence"]


def strict_json(text):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_forecast_then_run_then_explain(tmp_path, capsys):
    """The forecast writes forecast.json (per prompt: p now, p at the chosen steps with a band, the
    stationary point of the run's KL treatment, fate, signal) and the figure, with a progress bar; the
    run trained into the same folder starts from the very model the forecast probed (same p at step 0),
    and explain --run compares the two without being told where the forecast is."""
    out = tmp_path / "run"
    assert main(["forecast", *RUN, "--at", "3", "6", "--probe-batches", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "probe gradients" in captured.err and "2/2" in captured.err and "probe grad p" in captured.err
    assert (out / "forecast.png").stat().st_size > 10_000
    data = strict_json((out / "forecast.json").read_text())
    fc = ForecastRecord.from_dict(data)
    assert [r["prompt_id"] for r in data["prompts"]] == ["0", "1", "2", "3"] and list(fc.at) == [3, 6]
    scheme = get_scheme("grpo", 4)
    for i, row in enumerate(data["prompts"]):
        assert [a["step"] for a in row["at"]] == [3, 6]
        for a in row["at"]:
            k = list(fc.steps).index(a["step"])
            assert a["low"] <= a["p"] <= a["high"] and a["p"] == fc.p[k, i]
        assert row["stationary"] == pytest.approx(estimator_point(scheme, 0.2, row["p_now"], "k2").p, abs=1e-12)
        assert row["fate"] in ("rise", "stall", "fall") and row["signal"] == (1e-3 < row["p_now"] < 1 - 1e-3)
    assert data["config"]["kl_level"] == "sequence" and data["scheme"]["name"] == "grpo"
    assert {p["part"]: p["forecast"] for p in data["parts"]}["KL"] == "modelled"
    for line in data["summary"]:
        assert line in captured.out

    assert main(["train", *RUN, "--eval-steps", "3", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    rep = explain_run(out)
    assert rep.forecast is not None and list(rep.forecast_index) == [0, 1, 2, 3]
    np.testing.assert_allclose(rep.p_ref, fc.p_now, rtol=1e-5, atol=1e-7)  # the run's start is the probed model
    assert all(r["forecast"] is not None and r["forecast"]["step"] == 6 for r in rep.rows())
    assert main(["explain", "--run", str(out)]) == 0
    screen = capsys.readouterr().out
    assert "forecast [band]" in screen and "forecast: the measured p lies within the forecast's band for" in screen


def test_forecast_json_is_valid_and_holds_the_screen_fields(tmp_path, capsys):
    """--json prints the forecast (not its curves, which stay in the file) as strict JSON."""
    assert main(["forecast", *TINY, "--steps", "4", "--probe-batches", "2", "--json", "--out", str(tmp_path)]) == 0
    data = strict_json(capsys.readouterr().out)
    assert "curves" not in data and len(data["prompts"]) == 4 and data["at"] == [1, 2, 4]
    assert {p["part"] for p in data["parts"]} >= {"optimiser", "schedule", "clipping", "KL", "p_ref", "coupled prompts"}
    assert data["summary"][0].startswith("4 prompts over 4 steps: ")


def test_a_trl_config_is_forecast_with_the_trainer_fields_it_maps_to(tmp_path, capsys):
    """A GRPOConfig YAML becomes the trainer's fields: dr_grpo divides by max_completion_length, k3 x ratio
    is k2 per token, max_steps, the linear schedule, a batch of 8 completions = 2 prompts of M = 4; the
    scheme is TRL's own advantages (preset trl-grpo)."""
    (tmp_path / "grpo.yaml").write_text(
        "num_generations: 4\nbeta: 0.2\nloss_type: dr_grpo\nmax_completion_length: 3\nlearning_rate: 0.003\n"
        "max_steps: 4\nper_device_train_batch_size: 8\nwarmup_steps: 0.5\n")
    argv = ["forecast", "--trl-config", str(tmp_path / "grpo.yaml"), "--task", "mod", "--n-prompts", "4", "--n-layer",
            "1", "--width", "32", "--warm-start-steps", "30", "--probe-batches", "2", "--quiet", "--out"]
    assert main(argv + [str(tmp_path / "a")]) == 0
    capsys.readouterr()
    cfg = json.loads((tmp_path / "a" / "forecast.json").read_text())["config"]
    assert (cfg["loss_aggregation"], cfg["aggregation_constant"], cfg["kl_estimator"], cfg["kl_level"]) == (
        "seq-sum-constant", 3.0, "k2", "token")
    assert (cfg["steps"], cfg["lr_scheduler_type"], cfg["warmup_steps"], cfg["prompts_per_step"], cfg["optim"]) == (
        4, "linear", 2, 2, "adamw")
    data = json.loads((tmp_path / "a" / "forecast.json").read_text())
    assert data["scheme"]["name"] == "trl-grpo" and data["scheme"]["a"] == get_preset("trl-grpo", 4).a.tolist()


@pytest.mark.parametrize("yaml_text,flags,message", [
    ("num_generations: 4\nmax_steps: 4\nlr_scheduler_type: cosine\n", [], "lr_scheduler_type: not modelled"),
    ("num_generations: 4\n", [], "steps: not modelled by the forecast (max_steps = -1"),
    ("num_generations: 4\nmax_steps: 4\nloss_type: cispo\n", [], "loss_aggregation: not modelled"),
    ("num_generations: 4\nmax_steps: 4\n", ["--at", "9"], "--at steps must lie in 1..4"),
])
def test_what_a_forecast_cannot_model_is_refused_in_one_line(tmp_path, capsys, yaml_text, flags, message):
    (tmp_path / "t.yaml").write_text(yaml_text)
    code = main(["forecast", "--trl-config", str(tmp_path / "t.yaml"), *flags, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_folder_holding_a_run_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"task": "mod", "scheme": "grpo"}))
    assert main(["forecast", *TINY, "--out", str(tmp_path)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_probe_batches_default_is_the_probes_default():
    """The command's default (kept torch-free for ``--help``) is the probe layer's."""
    from rlvrlens.commands.forecast import PROBE_BATCHES
    from rlvrlens.forecast.forecast import DEFAULT_BATCHES

    assert PROBE_BATCHES == DEFAULT_BATCHES


def test_a_propagated_forecast_is_the_path_the_record_holds(tmp_path, capsys):
    """--propagate-every 2: the record's curve is the forecast propagated along its own parameter path
    (forecast.propagate with the same probe), its band carried over and said in a note; the progress
    bar shows the re-measurements. A negative count is refused in one line naming the flag."""
    from rlvrlens.forecast.forecast import forecast, propagate
    from rlvrlens.forecast.runs import starting_point
    from rlvrlens.training.config import TrainConfig

    out = tmp_path / "p"
    assert main(["forecast", *TINY, "--steps", "4", "--probe-batches", "2", "--propagate-every", "2",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "probe propagate" in captured.err and "1/1" in captured.err
    fc = ForecastRecord.from_dict(strict_json((out / "forecast.json").read_text()))
    assert any("propagated along its own parameter path" in n for n in fc.notes)
    assert np.all(fc.low <= fc.p + 1e-12) and np.all(fc.p <= fc.high + 1e-12)
    config = TrainConfig.from_dict(fc.config)
    scheme = get_scheme("grpo", 4)
    policy, task = starting_point(config, scheme)
    frozen = forecast(policy, task, config, 4, scheme=scheme, batches=2, seed=0)
    path = propagate(policy, task, frozen.probe, config, scheme, 4, 2)
    np.testing.assert_allclose(fc.p[-1], path[-1], rtol=1e-6)
    assert not np.allclose(path[-1], frozen.p[-1], rtol=1e-9, atol=0)  # re-measuring moved it
    assert main(["forecast", *TINY, "--steps", "4", "--propagate-every", "-1", "--out", str(tmp_path / "q")]) == 2
    assert "--propagate-every must be 0 (off) or a number of steps >= 1" in capsys.readouterr().err
