"""``explain --run`` (issue 22): runs from anywhere, each prompt against its forecast and stationary point.

Runs are written here in each accepted format (a plain JSONL of per-group rewards, our trainer's
records, records with a ``forecast.json``); a TRL-recorded run of a real tiny model is in
``tests/trl/test_explain_run_trl.py`` and the forecast command in ``tests/test_forecast_cli.py``.
"""

import json

import numpy as np
import pytest
from scipy import stats

from rlvrlens.cli import main
from rlvrlens.core.intervals import decimals, format_interval
from rlvrlens.explain import ForecastRecord, configuration_parts, estimator_point, explain_run, read_run
from rlvrlens.explain.forecasts import FORMAT
from rlvrlens.objectives import design, get_preset, get_scheme


def strict_json(text):
    """json.loads that refuses NaN and infinities (which JSON does not have)."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def wilson(k, n, z=stats.norm.ppf(0.975)):
    """The Wilson score interval written out (Wilson 1927), independent of the package's."""
    ph = k / n
    centre = (ph + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def write_rewards(path, groups):
    """One line per group ``(step, prompt_id, rewards)``, in the documented plain format (extra keys ignored)."""
    path.write_text("".join(json.dumps({"step": s, "prompt_id": pid, "rewards": r, "extra": "ignored"}) + "\n"
                            for s, pid, r in groups))
    return path


# -- the plain JSONL of rewards ------------------------------------------------------------------------------
def _plain_groups():
    """Prompt 'a' rises 2/8 -> 6/8, prompt 'b' stays at 0/8; 4 steps, one group of 8 each."""
    a = [[1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 0, 0]]
    return [(s, pid, r) for s in range(4) for pid, r in (("a", a[s]), ("b", [0] * 8))]


def test_plain_rewards_are_pooled_per_window_with_wilson_intervals(tmp_path):
    """Windows of 2 steps pool 16 rewards per prompt: p = wins/16 with the Wilson interval written out
    above; M is the group length; the measured zero-variance fraction counts all-equal groups (prompt
    b's four and none of a's). Pooling the wrong steps, or one interval per group, changes every number."""
    run = write_rewards(tmp_path / "rewards.jsonl", _plain_groups())
    rec = read_run(run, window=2)
    assert rec.kind == "rewards" and rec.M == 8 and rec.prompt_ids == ("a", "b")
    np.testing.assert_allclose(rec.p[:, 0], [4 / 16, 11 / 16])
    np.testing.assert_allclose(rec.p[:, 1], [0.0, 0.0])
    np.testing.assert_allclose(rec.steps, [0.5, 2.5])
    for row, wins in enumerate((4, 11)):
        assert (rec.low[row, 0], rec.high[row, 0]) == pytest.approx(wilson(wins, 16), abs=1e-12)
    assert rec.zero_std == pytest.approx(4 / 8)
    default = read_run(run)  # 4 steps in at most 8 windows: one step each
    assert default.p.shape == (4, 2) and default.p[0, 0] == pytest.approx(2 / 8)


def test_stationary_point_carries_the_interval_of_an_estimated_p_ref(tmp_path):
    """p* is computed at p_ref and at both ends of its Wilson interval (it is non-decreasing in p_ref,
    test below): a point prediction from an estimate of 16 samples is never printed alone, and its
    digits follow its interval."""
    run = write_rewards(tmp_path / "rewards.jsonl", _plain_groups())
    rep = explain_run(run, scheme="rloo", beta=0.5, kl_estimator="k3", window=2)
    s = get_scheme("rloo", 8)
    lo, hi = wilson(4, 16)
    assert rep.p_ref[0] == pytest.approx(4 / 16)
    for got, p in zip((rep.predicted[0], rep.predicted_low[0], rep.predicted_high[0]), (4 / 16, lo, hi)):
        assert got == pytest.approx(estimator_point(s, 0.5, p, "k3").p, abs=1e-12)
    assert rep.predicted_low[0] < rep.predicted[0] < rep.predicted_high[0]
    # prompt b: all 16 answers wrong, p_ref = 0 is absorbing, but its interval reaches up to 0.19
    assert rep.predicted[1] == 0 and rep.predicted_high[1] > 0.3
    assert {p.name: p for p in rep.parts}["p_ref"].stationary == "approximated"


@pytest.mark.parametrize("name,kl", [("grpo", "k2"), ("grpo", "k3"), ("rloo", "k3"), ("log_odds", "k2"),
                                     ("raft", "k3"), ("rloo", "reward")])
@pytest.mark.parametrize("beta", [0.1, 1.0, 4.0])
def test_stationary_point_is_non_decreasing_in_p_ref(name, kl, beta):
    """Why the interval can be carried by its ends: on a fine grid of p_ref, p* never decreases (the flow
    target is the first root above p_ref of a function that only rises with p_ref). A p* computed by
    the map's iteration (its cycles) or by the wrong root would break this at GRPO's fold."""
    s = get_scheme(name, 8)
    grid = np.linspace(0.001, 0.999, 120)
    star = np.array([estimator_point(s, beta, float(p), kl).p for p in grid])
    assert np.all(np.diff(star) >= -1e-9), grid[np.argmin(np.diff(star))]


def test_a_run_with_no_recorded_scheme_is_refused_in_one_line(tmp_path, capsys):
    """No config.json, no scheme.json, no --scheme/--trl-config: refused naming the flags, never guessed;
    a scheme without the KL coefficient is refused too."""
    run = write_rewards(tmp_path / "rewards.jsonl", _plain_groups())
    assert main(["explain", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "records no scheme" in err and "--scheme" in err
    assert main(["explain", "--run", str(run), "--scheme", "rloo"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--beta" in err
    assert main(["explain", "--run", str(run), "--scheme", "rloo", "--beta", "0"]) == 0


def test_verl_plugin_records(tmp_path, capsys):
    """Records in the verl plugin's shape (groups.jsonl with source verl, scheme.json with the scheme under
    "scheme") are a verl run explained with that scheme; with verl's fresh uid per sample no prompt has
    a trajectory, which is refused in one line rather than explained as thousands of one-point prompts
    (a plain file whose prompts are each recorded once is explained, with a note saying so)."""
    run = tmp_path / "verl"
    run.mkdir()
    rows = [{"step": s, "prompt_id": pid, "rewards": r, "n": 8, "p_hat": sum(r) / 8, "split": "train",
             "scheme": "rloo", "source": "verl"} for s, pid, r in _plain_groups()]
    (run / "groups.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "scheme.json").write_text(json.dumps({"source": "verl", "estimator": "rlvrlens", "config": {"scheme": "rloo"},
                                                 "scheme": get_scheme("rloo", 8).describe(), "by_group_size": {}}))
    rep = explain_run(run, beta=0.5, kl_estimator="k3")
    assert rep.kind == "verl" and rep.scheme == get_scheme("rloo", 8) and rep.scheme_source.startswith("scheme.json")
    fresh = [{**r, "prompt_id": f"uid-{k}"} for k, r in enumerate(rows)]
    (run / "groups.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fresh))
    assert main(["explain", "--run", str(run), "--beta", "0.5", "--kl-estimator", "k3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no prompt_id is recorded in two windows" in err
    plain = write_rewards(tmp_path / "once.jsonl", [(r["step"], r["prompt_id"], r["rewards"]) for r in fresh])
    rep = explain_run(plain, scheme="rloo", beta=0.5, kl_estimator="k3")  # a plain file: one estimate each, said so
    assert rep.kind == "rewards" and any("no prompt is recorded in two windows" in n for n in rep.notes)


def test_scheme_by_file_or_name(tmp_path, capsys):
    """--scheme takes a designed scheme's JSON (rlvrlens design --json output) with its exact a and b, a
    catalogue name with M from the run's groups, or a preset; a file for another M is refused."""
    run = write_rewards(tmp_path / "rewards.jsonl", _plain_groups())
    assert main(["design", "--target", "log(t/(1-t))", "--M", "8", "--json"]) == 0
    (tmp_path / "designed.json").write_text(capsys.readouterr().out)
    rep = explain_run(run, scheme=str(tmp_path / "designed.json"), beta=1.0, kl_estimator="k2")
    want = design("log(t/(1-t))", 8).scheme
    assert rep.scheme.name == want.name and np.array_equal(rep.scheme.a, want.a) and np.array_equal(rep.scheme.b, want.b)
    assert rep.scheme_source.startswith("--scheme")
    assert explain_run(run, scheme="grpo", beta=1.0, kl_estimator="k2").scheme == get_scheme("grpo", 8)
    assert explain_run(run, scheme="trl-grpo", params={"scale_rewards": "none"}, beta=1.0,
                       kl_estimator="k2").scheme == get_preset("trl-grpo", 8, scale_rewards="none")
    (tmp_path / "m4.json").write_text(json.dumps(get_scheme("rloo", 4).describe()))
    with pytest.raises(ValueError, match="M = 4, the run has M = 8"):
        explain_run(run, scheme=str(tmp_path / "m4.json"), beta=1.0, kl_estimator="k2")


def test_json_is_valid_and_has_the_screen_fields(tmp_path, capsys):
    """--json output parses with NaN refused (an unresolved p*, GRPO with the KL in the reward, is null),
    and holds what the screen shows: the summary lines verbatim, one row per prompt, every part."""
    run = write_rewards(tmp_path / "rewards.jsonl", _plain_groups())
    argv = ["explain", "--run", str(run), "--scheme", "grpo", "--beta", "0.5", "--kl-estimator", "reward"]
    assert main(argv + ["--json"]) == 0
    data = strict_json(capsys.readouterr().out)
    assert data["prompts"][0]["stationary"]["p"] is None and data["prompts"][0]["stationary"]["outcome"] == "unresolved"
    assert main(argv) == 0
    screen = capsys.readouterr().out
    for line in data["summary"]:
        assert line in screen
    assert [r["prompt_id"] for r in data["prompts"]] == ["a", "b"]
    for part in data["parts"]:
        assert part["part"] in screen and part["stationary"] in screen


def test_digits_follow_the_interval(tmp_path, capsys):
    """A number is printed with the decimals of its interval's half-width's first digit plus one: 16
    samples give two decimals, 4000 samples three; exact success keeps four."""
    assert decimals(0.1, 0.5) == 2 and decimals(0.49, 0.51) == 3 and decimals(0.5, 0.5) == 6
    assert format_interval(0.3, 0.1, 0.5) == "0.30 [0.10, 0.50]"
    run = write_rewards(tmp_path / "rewards.jsonl", _plain_groups())
    assert main(["explain", "--run", str(run), "--scheme", "rloo", "--beta", "0.5", "--kl-estimator", "k3",
                 "--window", "2"]) == 0
    out = capsys.readouterr().out
    lo, hi = wilson(11, 16)
    assert f"0.69 [{lo:.2f}, {hi:.2f}]" in out  # prompt a now: 11/16
    assert "0.6875" not in out


# -- forecasts ------------------------------------------------------------------------------------------------
def synthetic_forecast(n=3, steps=20, ids=None, prompts=None, config=None, p0=None, end=None, diagonal_end=None,
                       half=0.5):
    """A forecast record whose curves go linearly in logit from p0 to end, with a band of +- half logit."""
    from scipy.special import expit, logit

    t = np.arange(steps + 1)
    p0 = np.full(n, 0.3) if p0 is None else np.asarray(p0, float)
    end = np.full(n, 0.6) if end is None else np.asarray(end, float)
    diagonal_end = end if diagonal_end is None else np.asarray(diagonal_end, float)

    def curve(a, b):
        return expit(logit(a)[None] + (logit(b) - logit(a))[None] * t[:, None] / steps)

    x = logit(curve(p0, end))
    ids = tuple(ids or (str(i) for i in range(n)))
    prompts = tuple(prompts or (f"prompt {i}" for i in range(n)))
    cfg = {"scheme": "grpo", "num_generations": 8, "beta": 0.5, "kl_estimator": "k3", "learning_rate": 1e-3,
           **(config or {})}
    return ForecastRecord(ids, prompts, t.astype(float), expit(x), expit(x - half), expit(x + half),
                          curve(p0, diagonal_end), np.array([steps // 2, steps]), np.full(n, 0.9), 8,
                          "KL(pi_ref||pi) (k3 per token), beta 0.5", cfg, get_scheme("grpo", 8).describe(),
                          configuration_parts(cfg, p_ref="exact", forecast=True), ("a note",), {"batches": 2},
                          "test model", "test task")


def write_success_run(path, history, config, low=None, high=None, ids=None, method="exact"):
    """Our trainer's records: config.json (every field) and success.jsonl at steps 0, 10, 20, ..."""
    from rlvrlens.training.config import TrainConfig

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(TrainConfig(**config).to_dict()))
    lines = []
    for k, p in enumerate(history):
        rec = {"step": 10 * k, "method": method, "p": list(p)}
        if low is not None:
            rec.update(low=list(low[k]), high=list(high[k]))
        if ids is not None:
            rec["prompt_ids"] = list(ids)
        lines.append(json.dumps(rec) + "\n")
    (path / "success.jsonl").write_text("".join(lines))
    return path


def test_the_forecast_in_the_run_folder_is_compared_at_the_same_step(tmp_path):
    """forecast.json next to the records is read; each prompt's last record (step 20) is compared with
    the forecast at step 20 and its band: within, above, below as the intervals say; the forecast's
    interpolation between stored steps is linear in logit (checked at step 10 against the closed form)."""
    cfg = {"scheme": "grpo", "num_generations": 8, "beta": 0.5, "kl_estimator": "k3", "kl_level": "sequence"}
    fc = synthetic_forecast(n=3, p0=[0.3, 0.3, 0.3], end=[0.6, 0.6, 0.6])
    run = write_success_run(tmp_path / "run", [[0.3, 0.3, 0.3], [0.4, 0.5, 0.2], [0.6, 0.95, 0.05]], cfg)
    fc.write(run / "forecast.json")
    rep = explain_run(run)
    rows = rep.rows()
    assert [r["forecast"]["versus"] for r in rows] == ["within", "above", "below"]
    assert rows[0]["forecast"]["p"] == pytest.approx(0.6)
    from scipy.special import expit, logit

    between, _, _ = fc.at_step(10.5)  # between two stored steps: linear in logit, like the synthetic curve
    assert between[0] == pytest.approx(float(expit(logit(0.3) + (logit(0.6) - logit(0.3)) * 10.5 / 20)), abs=1e-12)
    assert rep.p_ref_method == "exact"  # the run's own exact p at step 0 is kept
    assert any(line.startswith("forecast: the measured p lies within the forecast's band for 1 of 3")
               for line in rep.summary())
    assert {p.name: p.forecast for p in rep.parts}["schedule"] == "modelled"


def test_forecast_gives_the_exact_p_ref_of_an_estimated_run_and_matches_by_prompt_text(tmp_path):
    """A run whose records are estimates (a TRL run's prompt ids are its texts) gets p_ref from the
    forecast's exact probe, matched by prompt text when the ids differ; a forecast made for another
    learning rate is said to be; prompts past the forecast's horizon are not compared."""
    cfg = {"scheme": "grpo", "num_generations": 8, "beta": 0.5, "kl_estimator": "k3", "learning_rate": 2e-3}
    fc = synthetic_forecast(n=2, steps=10, prompts=("1+1=", "2+2="), p0=[0.2, 0.7], config={"learning_rate": 1e-3})
    hist = [[0.25, 0.75], [0.3, 0.7], [0.5, 0.8]]
    low = [[max(0, p - 0.1) for p in h] for h in hist]
    high = [[min(1, p + 0.1) for p in h] for h in hist]
    run = write_success_run(tmp_path / "run", hist, cfg, low, high, ids=("1+1=", "2+2="), method="estimate(K=64)")
    fc.write(tmp_path / "elsewhere.json")
    rep = explain_run(run, forecast=tmp_path / "elsewhere.json")
    assert list(rep.forecast_index) == [0, 1]
    np.testing.assert_allclose(rep.p_ref, [0.2, 0.7])
    assert rep.p_ref_method.startswith("exact (the forecast's probe")
    assert any("learning_rate 0.001 (run: 0.002)" in n for n in rep.notes)
    assert rep.rows()[0]["forecast"] is None  # last record at step 20, the forecast ends at 10
    assert any("after the forecast's horizon" in n for n in rep.notes)
    with pytest.raises(ValueError, match="not an rlvrlens forecast"):
        (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
        explain_run(run, forecast=tmp_path / "bad.json")


def test_forecast_file_round_trip_and_fates():
    """to_dict/from_dict keep every curve; fates: rise/fall beyond FATE_DELTA, else stall; a falling prompt
    whose own (diagonal) forecast does not fall falls because of the others; p within 1e-3 of 0 has no signal."""
    fc = synthetic_forecast(n=4, p0=[0.3, 0.3, 0.3, 0.0005], end=[0.6, 0.1, 0.1, 0.0005],
                            diagonal_end=[0.6, 0.1, 0.5, 0.0005])
    assert fc.fate == ("rise", "fall", "fall", "stall")
    assert list(fc.because_of_others) == [False, False, True, False]
    assert list(fc.no_signal) == [False, False, False, True]
    again = ForecastRecord.from_dict(strict_json(json.dumps(fc.to_dict(), allow_nan=False)))
    for name in ("p", "low", "high", "diagonal", "stationary", "steps"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fc, name))
    assert again.fate == fc.fate and again.parts == fc.parts and fc.to_dict()["format"] == FORMAT
    summary = fc.summary()
    assert summary[0] == "4 prompts over 20 steps: 1 rise, 1 stall, 2 fall"
    assert "1 because of the others" in summary[3] and "1 with no learning signal" in summary[2]


# -- figures at 64 prompts -------------------------------------------------------------------------------------
def _fates_64():
    """64 prompts: 30 rise, 20 stall (8 of them at p ~ 0: no signal), 14 fall (5 of them because of others)."""
    p0 = np.r_[np.full(30, 0.3), np.full(12, 0.5), np.full(8, 2e-4), np.full(14, 0.6)]
    end = np.r_[np.full(30, 0.8), np.full(12, 0.505), np.full(8, 2e-4), np.full(14, 0.2)]
    diag = end.copy()
    diag[-5:] = 0.7
    return synthetic_forecast(n=64, steps=50, p0=p0, end=end, diagonal_end=diag)


def test_forecast_figure_groups_64_prompts_by_fate(tmp_path):
    """Three fate panels whose titles count the prompts, one thin line per prompt in its panel (plus the
    median), the no-signal and because-of-others counts, and the batch mean: written as a PNG."""
    from rlvrlens.figures.forecast import plot_forecast
    from rlvrlens.figures.style import save

    fc = _fates_64()
    fig = plot_forecast(fc)
    axes = fig.axes
    titles = [ax.get_title() for ax in axes]
    assert titles[:3] == ["rise (30 prompts)", "stall (20 prompts, 8 no signal)", "fall (14 prompts, 5 because of others)"]
    assert titles[3] == "batch mean over the 64 prompts"
    for ax, count in zip(axes[:3], (30, 20, 14)):
        drawn = [line for line in ax.get_lines() if len(line.get_xdata()) == len(fc.steps)]
        assert len(drawn) == count + 1  # each prompt and the median
        labels = ax.get_legend().get_texts()
        assert f"median of the {count}" in [t.get_text() for t in labels]
    path = save(fig, tmp_path / "forecast", formats=("png",))[0]
    assert path.stat().st_size > 20_000


def test_run_figure_has_one_panel_per_prompt_at_64(tmp_path):
    """explain_run.png at 64 prompts: 64 visible panels in an 8 x 8 grid, each titled by its prompt, with
    the forecast's line where there is one, and one legend naming the three things drawn."""
    from rlvrlens.figures.explain import plot_run
    from rlvrlens.figures.style import save

    fc = _fates_64()
    cfg = {"scheme": "grpo", "num_generations": 8, "beta": 0.5, "kl_estimator": "k3"}
    hist = np.stack([fc.p[0], fc.p[25], fc.p[50]])
    run = write_success_run(tmp_path / "run", hist.tolist(), cfg)
    fc.write(run / "forecast.json")
    rep = explain_run(run)
    fig = plot_run(rep)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 64 and [ax.get_title() for ax in visible] == [str(i) for i in range(64)]
    assert all(len(ax.collections) >= 1 for ax in visible)  # the forecast's band
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["measured p (interval)", "forecast made before the run (band shaded)",
                      "stationary point p* (grey: from p_ref's interval)"]
    path = save(fig, tmp_path / "explain_run", formats=("png",))[0]
    assert path.stat().st_size > 50_000


def test_trl_settings_map_grpoconfig_to_the_trainer():
    """TRL's fields in the trainer's names: the loss types, k3 x ratio as k2 per token, warm-up ratios,
    batch per step, Hugging Face optimiser names; what has no counterpart is refused with the reason."""
    from rlvrlens.explain import trl_settings, verl_settings

    s = trl_settings({"num_generations": 4, "beta": 0.1, "loss_type": "grpo", "max_steps": 50, "warmup_steps": 0.1,
                      "per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "optim": "adamw_torch",
                      "learning_rate": 3e-6, "max_completion_length": 64, "num_processes": 2})
    f = s.fields
    assert (f["loss_aggregation"], f["kl_estimator"], f["kl_level"], f["warmup_steps"], f["steps"]) == (
        "seq-mean-token-mean", "k2", "token", 5, 50)
    assert (f["prompts_per_step"], f["optim"], f["learning_rate"], f["max_new_tokens"]) == (8, "adamw", 3e-6, 64)
    assert s.kl_estimator == "k2" and not s.refused
    bad = trl_settings({"loss_type": "cispo", "optim": "adafactor", "lr_scheduler_type": "cosine", "top_k": 5,
                        "scale_rewards": "batch", "entropy_coef": 0.01})
    assert set(bad.refused) == {"steps", "loss_aggregation", "optim", "lr_scheduler_type", "top_k", "scheme",
                                "entropy_coef"}
    dr = trl_settings({"loss_type": "dr_grpo", "max_completion_length": 32, "use_bias_correction_kl": False,
                       "beta": 0.2, "max_steps": 10})
    assert (dr.fields["aggregation_constant"], dr.fields["kl_estimator"]) == (32.0, "k3")
    v = verl_settings({"algorithm": {"adv_estimator": "grpo"}, "trainer": {"total_training_steps": 20},
                       "data": {"train_batch_size": 8, "max_response_length": "${oc.select:x}"},
                       "actor_rollout_ref": {"rollout": {"n": 4}, "actor": {
                           "ppo_mini_batch_size": 4, "loss_agg_mode": "seq-mean-token-sum-norm",
                           "optim": {"lr": 1e-6, "warmup_style": "cosine"}}}})
    assert v.fields["loss_aggregation"] == "seq-sum-constant" and v.fields["aggregation_constant"] == 512.0
    assert set(v.refused) == {"lr_scheduler_type", "prompts_per_step"}
