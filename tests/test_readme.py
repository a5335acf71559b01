"""The README's numbers are what the package computes (issue 11 item 7): the `explain` paragraph
is parsed and every number is compared with `rlvrlens.explain` at the README's rounding, so a
changed result or an edited number fails (the smallest detected change is one unit in the last
printed digit)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rlvrlens.explain import cycle_threshold, explain
from rlvrlens.objectives import get_preset

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## What is my trainer optimising?")
    return " ".join(text[start:text.index("![explain]", start)].split())


@pytest.fixture(scope="module")
def reports():
    return explain("trl-grpo", 64, beta=1.0), explain("openrlhf-dr-grpo", 64, beta=1.0)


def _number(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"README no longer says {pattern!r}"
    return match.group(1)


def test_readme_command_is_the_one_computed(paragraph):
    assert "rlvrlens explain --preset trl-grpo --num-generations 64 --beta 1 --compare openrlhf-dr-grpo" in paragraph


def test_weight_ratio(paragraph, reports):
    said = _number(r"puts ([\d.]+)× more step on a prompt solved 1% of the time", paragraph)
    grpo = reports[0]
    assert f"{grpo.table_weight[0] / grpo.table_weight[4]:.1f}" == said  # p = 0.01 vs p = 0.5


def test_fixed_points_at_half(paragraph, reports):
    grpo, dr = reports
    said_grpo = _number(r"p_ref = 0\.5 to p\* ≈ ([\d.]+)", paragraph)
    said_dr = _number(r"against ([\d.]+) for Dr\. GRPO", paragraph)
    half = list(grpo.kl.p_ref).index(0.5)
    assert f"{grpo.kl.p_star[half]:.{len(said_grpo) - 2}f}" == said_grpo
    assert f"{dr.kl.p_star[half]:.{len(said_dr) - 2}f}" == said_dr


def test_three_fixed_points_at_a_quarter(paragraph, reports):
    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
    said = _number(r"At p_ref = 0\.25 the GRPO map has (\w+) fixed points", paragraph)
    grpo = reports[0]
    assert int(grpo.kl.n_fixed_points[list(grpo.kl.p_ref).index(0.25)]) == words[said]


def test_two_cycle_threshold(paragraph):
    said = _number(r"prompts below p_ref ≈ ([\d.]+) end in a 2-cycle", paragraph)
    threshold = cycle_threshold(get_preset("trl-grpo", 64), 1.0)
    assert f"{threshold:.{len(said) - 2}f}" == said


def test_zero_variance_fraction(paragraph, reports):
    said = _number(r"uniform spread of p, (\d+)% of groups have zero reward variance", paragraph)
    assert f"{reports[0].frac_zero_std:.0%}" == f"{said}%"


@pytest.fixture(scope="module")
def design_paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Weights you would design on purpose")
    return " ".join(text[start:text.index("Unbounded, minimax", start)].split())


def test_design_example_numbers(design_paragraph):
    """The minimax, quasi-interpolant and closed-form sup errors the README quotes at M = 8."""
    import sympy

    from rlvrlens.objectives import design, h, log_odds, parse_target

    interval = (0.05, 0.95)
    best = design("log(t/(1-t))", 8, method="minimax", max_weight=20, interval=interval)
    quasi = design("log(t/(1-t))", 8, interval=interval)
    fn = sympy.lambdify(sympy.Symbol("t"), parse_target("log(t/(1-t))"), "numpy")
    grid = np.unique(np.concatenate([np.linspace(*interval, 2001), np.geomspace(*interval, 500)]))
    gap = h(log_odds(8), grid) - fn(grid)
    closed = 0.5 * float(gap.max() - gap.min())
    assert _number(r"bounded by 20 reach a sup error of ([\d.]+)", design_paragraph) == f"{best.error:.4f}"
    assert _number(r"`method=\"quasi\"`\) reaches ([\d.]+)", design_paragraph) == f"{quasi.error:.3f}"
    assert _number(r"closed-form `log_odds` weights ([\d.]+)", design_paragraph) == f"{closed:.3f}"
    assert f"sup |h_M - h - k| = {best.error:.6g}" in design_paragraph
    assert f"max E[Z^2] = {best.second_moment:.6g}" in design_paragraph


def test_estimator_table_predictions():
    """The predicted columns of the README's KL-estimator table and the 2-cycle example."""
    from rlvrlens.dynamics import attractor, flow_target, grpo_success_map, stationary_points
    from rlvrlens.objectives import get_scheme

    text = " ".join(README.read_text(encoding="utf-8").split())
    scheme = get_scheme("grpo", 4)
    for kl, label in (("ref||pi", "KL(π_ref‖π): "), ("pi||ref", "KL(π‖π_ref): ")):
        said = _number(re.escape(label) + r"([\d. /]+) \|", text)
        got = " / ".join(f"{stationary_points(scheme, 1.0, p, kl)[0].p:.4f}" for p in (0.05, 0.3, 0.6))
        assert said.strip() == got
    F = grpo_success_map(beta=2.0, p_ref=3e-3)
    cycle = sorted(float(v) for v in attractor(F).p)
    target = flow_target(F)
    assert f"{cycle[0]:.4f} ↔ {cycle[1]:.4f}" in text
    assert f"flow target {target.p:.4f} (the map's slope there is {float(F.logit_slope(target.logit)):.2f}" \
        .replace("-", "−") in text


@pytest.fixture(scope="module")
def smollm2_paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("**SmolLM2-135M-Instruct**")
    return " ".join(text[start:text.index("Not measured: fixed points and the joint", start)].split())


def test_smollm2_numbers_are_the_committed_measurements(smollm2_paragraph):
    """The SmolLM2 paragraph quotes results/smollm2-cpu/measurements.jsonl at its rounding: the
    trajectory's three logit RMS values, the one-step ratio ranges at both step sizes, the smallest
    |z| of the diagonal model and the identity's ratios."""
    import json

    from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS

    records = [json.loads(line) for line in (SMOLLM2_RESULTS / "measurements.jsonl").read_text().splitlines()]
    traj = next(r for r in records if r["experiment"] == "coupling_trajectory")
    assert (f"logit RMS of {traj['logit_rms_coupled']:.3f}, against {traj['logit_rms_diagonal']:.3f} with K diagonal "
            f"and {traj['logit_rms_uncoupled']:.3f}") in smollm2_paragraph
    one = [r for r in records if r["experiment"] == "coupling_one_step"]
    for lr, label in ((min(r["lr"] for r in one), "small"), (max(r["lr"] for r in one), "large")):
        ratios = [r["ratio"] for r in one if r["lr"] == lr]
        assert f"{min(ratios):.2f}–{max(ratios):.2f}" in smollm2_paragraph, label
    small = [r for r in one if r["lr"] == min(x["lr"] for x in one)]
    assert f"|z| ≤ {max(abs(r['z']) for r in small):.1f}" in smollm2_paragraph
    assert f"|z| ≥ {min(abs(r['z_diagonal']) for r in one):.1f}" in smollm2_paragraph
    G = max(r["groups"] for r in records if r["experiment"] == "expected_step_projected")
    for r in records:
        if r["experiment"] == "expected_step_projected" and r["groups"] == G:
            assert f"{r['ratio']:.2f} ± {r['ratio_se']:.2f}" in smollm2_paragraph, r


def test_held_out_first_order_numbers_are_the_committed_measurements():
    """The held-out paragraph quotes results/smollm2-cpu/first-order/measurements.jsonl (``validate
    --preset smollm2-cpu --only first-order``) at its rounding: each family's three step sizes, the
    projected step and the zero-step extrapolation."""
    import json

    from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS

    text = README.read_text(encoding="utf-8")
    start = text.index("**First order on held-out prompts**")
    para = " ".join(text[start:text.index("Not measured:", start)].split())
    records = [json.loads(x) for x in (SMOLLM2_RESULTS / "first-order" / "measurements.jsonl").read_text().splitlines()]
    assert "rlvrlens validate --preset smollm2-cpu --only first-order" in para

    def said(r):
        return f"{r['ratio']:.3f} ± {r['ratio_se']:.3f}"

    for family in ("times", "gcd"):
        steps = sorted((r for r in records if r["experiment"] == "first_order" and r["family"] == family),
                       key=lambda r: r["target"])
        assert " / ".join(said(r) for r in steps) in para, family
        for kind in ("first_order_projected", "first_order_limit"):
            assert said(next(r for r in records if r["experiment"] == kind and r["family"] == family)) in para


def test_sampled_first_order_numbers_are_the_committed_measurements():
    """The held-out paragraph quotes results/smollm2-cpu/first-order-sampled/measurements.jsonl
    (``validate --only first-order-sampled``): each family's factor, the pooled one, the count of
    completions and of disagreements, and how far below each factor the issue's 0.93 lies."""
    import numpy as np

    from rlvrlens.core.records import read_jsonl
    from rlvrlens.paper_repro.validation import ISSUE_DEFICIT, SMOLLM2_RESULTS

    text = README.read_text(encoding="utf-8")
    start = text.index("**First order on held-out prompts**")
    para = " ".join(text[start:text.index("**A forecast from step 0 on SmolLM2**", start)].split())
    fams = {r["family"]: r for r in read_jsonl(SMOLLM2_RESULTS / "first-order-sampled" / "measurements.jsonl")
            if r["experiment"] == "first_order_sampled"}
    assert "rlvrlens validate --preset smollm2-cpu --only first-order-sampled" in para
    times, gcd = fams["times"], fams["gcd"]
    assert (f"{times['ratio']:.3f} ± {times['ratio_se']:.3f} (products) and {gcd['ratio']:.3f} ± "
            f"{gcd['ratio_se']:.3f} (gcd)") in para
    w = np.array([1 / r["ratio_se"] ** 2 for r in (times, gcd)])
    assert f"pooled {w @ [times['ratio'], gcd['ratio']] / w.sum():.3f} ± {w.sum() ** -0.5:.3f}" in para
    assert f"{times['groups']} groups of {times['M']}" in para
    assert f"on all {times['completions'] + gcd['completions']:,} sampled completions" in para
    assert times["mismatches"] == gcd["mismatches"] == 0 and "(0 disagree)" in para
    below = [(r["ratio"] - ISSUE_DEFICIT) / r["ratio_se"] for r in (times, gcd)]
    assert f"lies {below[0]:.1f} and {below[1]:.1f} standard errors below" in para


def test_smollm2_forecast_numbers_are_the_committed_measurements():
    """The forecast paragraph quotes results/smollm2-cpu/forecast/measurements.jsonl (``validate --preset
    smollm2-cpu --only forecast``): both runs' four logit RMS values, the horizon and the probe's and
    runs' seconds."""
    import json

    from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS

    text = README.read_text(encoding="utf-8")
    start = text.index("**A forecast from step 0 on SmolLM2**")
    para = " ".join(text[start:text.index("Not measured:", start)].split())
    assert "rlvrlens validate --preset smollm2-cpu --only forecast" in para
    runs = {}
    for line in (SMOLLM2_RESULTS / "forecast" / "measurements.jsonl").read_text().splitlines():
        r = json.loads(line)
        runs.setdefault(r["beta"], r)
    plain, kl = runs[0.0], runs[0.04]
    assert (f"forecast {plain['logit_rms_forecast']:.2f}, against {plain['logit_rms_nowcast']:.2f} for the nowcast"
            in para)
    assert f"{plain['logit_rms_diagonal']:.2f} for each prompt alone and {plain['logit_rms_naive']:.2f} for p" in para
    assert (f"(β = 0.04: {kl['logit_rms_forecast']:.2f}, {kl['logit_rms_nowcast']:.2f}, "
            f"{kl['logit_rms_diagonal']:.2f}, {kl['logit_rms_naive']:.2f})") in para
    assert f"up to step {plain['horizon']} only" in para
    assert (f"{plain['probe_seconds']:.0f} and {kl['probe_seconds']:.0f} s against runs of "
            f"{plain['run_seconds']:.0f} and {kl['run_seconds']:.0f} s") in para


def test_cpu_preset_numbers_are_the_committed_measurements():
    """The paragraph on the tiny transformer quotes results/cpu/measurements.jsonl (``validate --preset
    cpu``) at its rounding: the SGD trajectory's three logit RMS values, the KL one-step ratios, the
    identity's detectable errors, Adam's largest fixed-point gap and its horizon, the beta2 gaps and
    the sampled k2/k3 gaps, and the estimator table's trained column."""
    import json

    from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS

    records = [json.loads(x) for x in (SMOLLM2_RESULTS.parent / "cpu" / "measurements.jsonl").read_text().splitlines()]

    def of(kind):
        return [r for r in records if r["experiment"] == kind]

    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "rlvrlens validate --preset cpu" in text
    sgd = next(r for r in of("coupling_trajectory") if r["run"] == "SGD")
    assert (f"logit RMS of {sgd['logit_rms_coupled']:.3f}, against {sgd['logit_rms_diagonal']:.3f} with K diagonal "
            f"and {sgd['logit_rms_uncoupled']:.3f}") in text
    kl = [r["ratio"] for r in of("coupling_one_step") if r["beta"] > 0]
    assert ("measured/predicted " + ", ".join(f"{x:.2f}" for x in kl[:-1]) + f" and {kl[-1]:.2f}").replace("-", "−") \
        in text
    G = max(r["groups"] for r in of("expected_step") if "groups" in r)
    errors = [r["detectable_rel_error"] for r in of("expected_step") if r.get("groups") == G]
    assert f"({min(errors):.0%}–{max(errors):.0%} at G = {G} on the cpu size)".replace("%–", "–") in text
    adam = [r for r in of("lm_fixed_points") if r["part"] != "beta2"]
    assert f"logit gap of {max(abs(r['logit_gap']) for r in adam):.3f} after 300 steps" in text
    at1 = sorted({r["horizon"] for r in adam if r["beta"] == 1.0})
    assert f"only from step {at1[0]}–{at1[-1]} on" in text
    b2 = {b: [r["logit_gap"] for r in of("lm_fixed_points") if r["part"] == "beta2" and r["adam_beta2"] == b]
          for b in (0.9, 0.99, 0.999)}
    assert max(abs(x) for x in b2[0.9]) <= 0.05 and 0.2 <= min(b2[0.99] + b2[0.999]) <= max(b2[0.99] + b2[0.999]) <= 0.5
    sampled = of("sampled_fixed_points")
    assert max(abs(r["logit_gap"]) for r in sampled if r["estimator"] == "k2") <= 0.08
    assert max(abs(r["logit_gap"]) for r in sampled if r["estimator"] == "k3") <= 0.20
    for variant, label in (("k3 KL", "k3 (`low_var_kl`)"), ("k2 KL", "k2")):
        trained = " / ".join(f"{r['measured']:.4f}" for r in of("fixed_point_ablation")
                             if r["variant"] == variant and r["beta"] == 1.0)
        assert f"| {label} | {trained} |" in text, variant
    k1 = " / ".join(f"{r['measured']:.3f}" for r in of("fixed_point_ablation") if r["variant"] == "k1 KL")
    assert f"| k1 | {k1} (still rising) |" in text


def test_forecast_and_explain_example_is_the_committed_output():
    """The forecast section's two quoted blocks are lines of the committed output of its three commands
    (results/smollm2-forecast-explain/forecast.txt and explain.txt), whitespace aside."""
    from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS

    folder = SMOLLM2_RESULTS.parent / "smollm2-forecast-explain"
    text = README.read_text(encoding="utf-8")
    start = text.index("## Forecast a run before it starts, explain it after")
    section = text[start:text.index("## A real pretrained model", start)]
    blocks, current, opener = [], None, ""
    for line in section.splitlines():  # fenced blocks opened by a bare ``` (not ```bash)
        if line.startswith("```"):
            if current is None:
                current, opener = [], line
            else:
                if opener == "```":
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    assert len(blocks) == 2, len(blocks)

    def lines(s):
        return [" ".join(x.split()) for x in s.splitlines() if x.strip() and x.strip() != "..."]

    for block, name in zip(blocks, ("forecast.txt", "explain.txt")):
        output = set(lines((folder / name).read_text(encoding="utf-8")))
        missing = [x for x in lines(block) if x not in output]
        assert not missing, (name, missing)


def test_train_and_evaluate_example_is_the_committed_run():
    """The SmolLM2 train/evaluate paragraph quotes results/smollm2-train-evaluate: exact p at steps 0
    and 4 (success.jsonl, three digits) and evaluate's first line."""
    import json

    from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS

    folder = SMOLLM2_RESULTS.parent / "smollm2-train-evaluate"
    text = " ".join(README.read_text(encoding="utf-8").split())
    by_step = {r["step"]: r["p"] for r in map(json.loads, (folder / "success.jsonl").read_text().splitlines())}
    first, last = ("[" + ", ".join(f"{x:.3f}" for x in by_step[k]) + "]" for k in (0, 4))
    assert f"from {first} at step 0 to {last} at step 4" in text
    head = (folder / "evaluate.txt").read_text(encoding="utf-8").splitlines()[0]
    assert f"(`{head}`)" in text


BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "2026-12-06"


def _bench_numbers(text: str) -> dict[str, float]:
    """The ratios one ``python -m benchmarks bench_objectives bench_dynamics bench_trainer
    bench_trl_adapter bench_forecast`` run prints."""
    import json

    out = {"h_grpo": float(re.search(r"name='grpo'.*?ratio (\d+)x", text).group(1)),
           "h_raft": float(re.search(r"name='raft'.*?ratio (\d+)x", text).group(1))}
    m = re.search(r"ratio (\d+)x \(conversion against conversion, with the sympy values built: (\d+)x\)", text)
    out["design"], out["design_built"] = float(m.group(1)), float(m.group(2))
    out["grid_mroueh"], out["grid_grpo"] = (float(x) for x in re.findall(r"speed-up:\s+([\d.]+)x", text)[:2])
    block = text[text.index("==== bench_trainer"):text.index("==== bench_trl_adapter")]
    trainer = json.loads(block[block.index("\n{\n") + 1:block.rindex("\n}") + 2])
    out["trainer_median"], out["trainer_best"] = (trainer["ratio_ours_vs_trl"][k] for k in ("median", "best"))
    out["kv"] = trainer["ratio_kv_cache_vs_naive_sampling"]
    out["adapter_e2e"] = float(re.search(r"end to end: ([+-]?[\d.]+)% \(median\)", text).group(1))
    out["adapter_own"] = float(re.search(r"own code: ([\d.]+)%", text).group(1))
    out["distortion"] = float(re.search(r"sqrt\(Lxx Lyy\) = ([\d.]+)", text).group(1))
    return out


def benchmark_phrases(folder: Path = BENCH) -> list[str]:
    """What the README's benchmark table says of the three committed runs (median and range) and the
    committed SmolLM2 trainer run, at its rounding."""
    import json
    import statistics

    runs = [_bench_numbers((folder / f"run{k}.txt").read_text()) for k in (1, 2, 3)]

    def spread(key, fmt, unit="×"):
        values = [r[key] for r in runs]
        return (f"{format(statistics.median(values), fmt)}{unit}", f"{format(min(values), fmt)}–"
                f"{format(max(values), fmt)}{unit}")

    smol = json.loads((folder / "smollm2_trainer.json").read_text())["ratio_ours_vs_trl"]
    own = [r["adapter_own"] for r in runs]
    e2e = [r["adapter_e2e"] for r in runs]
    return [f"{spread('h_grpo', '.0f')[0]} (GRPO; {spread('h_grpo', '.0f')[1]})",
            f"{spread('h_raft', '.0f')[0]} (RAFT; {spread('h_raft', '.0f')[1]})",
            f"{spread('design', '.0f')[0]} conversion against conversion ({spread('design', '.0f')[1]})",
            f"{spread('design_built', '.0f')[0]} counting the building of sympy's values ({spread('design_built', '.0f')[1]})",
            f"{spread('grid_mroueh', '.0f')[0]} (Mroueh's population map; {spread('grid_mroueh', '.0f')[1]})",
            f"{spread('grid_grpo', '.0f')[0]} (GRPO M = 16; {spread('grid_grpo', '.0f')[1]})",
            f"{spread('trainer_median', '.2f')[0]} (median step; {spread('trainer_median', '.2f')[1]})",
            f"{spread('trainer_best', '.2f')[0]} (fastest step; {spread('trainer_best', '.2f')[1]})",
            f"KV-cache sampling vs none {spread('kv', '.1f')[0]} ({spread('kv', '.1f')[1]})",
            f"adapter code {min(own):.2f}% of a step" if f"{min(own):.2f}" == f"{max(own):.2f}"
            else f"adapter code {min(own):.2f}–{max(own):.2f}% of a step",
            f"end to end {statistics.median(e2e):+.1f}% median of 3 runs ({min(e2e):+.1f}% to {max(e2e):+.1f}%",
            f"largest entry error {statistics.median(r['distortion'] for r in runs):.4f} of sqrt(L_xx L_yy)",
            f"{smol['median']:.2f}× (median) / {smol['best']:.2f}× (best)"]


def test_benchmark_table_is_the_committed_benchmark_output():
    """Every ratio of the README's benchmark table is the median (range) of the three committed runs
    in benchmarks/results/2026-12-06 (or the committed SmolLM2 runs), so an edited number or a rerun
    that is not committed fails."""
    text = README.read_text(encoding="utf-8")
    table = " ".join(text[text.index("## Benchmarks"):].split())
    missing = [p for p in benchmark_phrases() if p not in table]
    assert not missing, missing
    smol = (BENCH / "smollm2_forecast_measured_2026-12-05.txt").read_text()
    for number in ("15.38 s per prompt", "861.2 s in all", "2.58 GB (46 MB per prompt)", "56.1 GB", "2053x"):
        assert number in smol
