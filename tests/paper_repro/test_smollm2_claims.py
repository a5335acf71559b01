"""The claims on the committed SmolLM2 measurements (rlvrlens.paper_repro.validation.smollm2_claims): labelled
stored and not counted, judged with their standard errors, and failing when a record says otherwise (each
claim can fail)."""

from __future__ import annotations

import json

import pytest

from rlvrlens.paper_repro.claims import summary
from rlvrlens.paper_repro.validation import SMOLLM2_RESULTS, smollm2_claims


def _records():
    return [json.loads(line) for line in (SMOLLM2_RESULTS / "measurements.jsonl").read_text().splitlines()]


def test_committed_smollm2_claims_are_stored_and_not_counted():
    claims = smollm2_claims()
    held_out = [c for c in claims if "held-out" in c.statement]
    # times and gcd: the step sweep's zero-step factor (|z| 0.5 and 0.8) and the sampled factor (0.1 and 1.3)
    assert len(held_out) == 4 and {c.verdict for c in held_out} == {"PASS"}
    forecasts = [c for c in claims if "forecast from step 0" in c.statement]
    assert len(forecasts) == 2 and all(c.explanation for c in forecasts)  # AdamW and AdamW with KL
    assert {c.verdict for c in forecasts} == {"FAIL"}  # logit RMS 1.53 and 1.47 against 0.2: a stated gap
    claims = claims[:6]
    assert {c.kind for c in claims} == {"stored"} and all("stored" in c.source for c in claims)
    assert summary(claims) == (0, 0)  # re-read from a file: not an independent pass
    verdicts = [c.verdict for c in claims]
    # the 3% claim: the mean ratio 0.987 has a standard error of 0.024, so 3% cannot be resolved
    assert verdicts == ["PASS"] * 4 + ["INCONCLUSIVE", "PASS"], verdicts
    ratio = claims[4]
    assert 0.02 < ratio.noise < 0.03 and ratio.explanation


@pytest.mark.parametrize("kind, field, value, failing", [
    ("expected_step_projected", "z_projected", 4.0, 0),
    ("expected_step_projected", "detectable_rel_error", 0.5, 1),
    ("coupling_one_step", "z", -3.5, 2),
    ("coupling_one_step", "z_diagonal", 1.0, 3),
    ("coupling_one_step", "ratio", 1.3, 4),
    ("coupling_trajectory", "logit_rms_coupled", 0.3, 5),
])
def test_each_claim_fails_on_a_record_that_contradicts_it(tmp_path, kind, field, value, failing):
    records = _records()
    G = max(r["groups"] for r in records if r["experiment"] == "expected_step_projected")
    small = min(r["lr"] for r in records if r["experiment"] == "coupling_one_step")
    for r in records:  # every record of the kind at the claim's size: the worst case moves with it
        if r["experiment"] == kind and r.get("groups", G) == G and (kind != "coupling_one_step" or r["lr"] == small):
            r[field] = value
    (tmp_path / "measurements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    verdicts = [c.verdict for c in smollm2_claims(tmp_path)]
    assert verdicts[failing] == "FAIL" and verdicts.count("FAIL") >= 1, verdicts


def test_held_out_and_forecast_claims_follow_their_own_records(tmp_path):
    """The sub-folders' claims read their own files, and each flips with its record: a zero-step or
    sampled ratio 4 standard errors from 1, a sampled factor of 0.95 (within 3 of its standard errors
    of the issue's 0.93) and a verifier that disagrees on 3 completions FAIL where the committed ones
    PASS; forecast RMS values within the target and a probe within its fraction PASS where the
    committed ones FAIL."""
    (tmp_path / "measurements.jsonl").write_text((SMOLLM2_RESULTS / "measurements.jsonl").read_text())
    committed = {c.statement: c.verdict for c in smollm2_claims()}
    for sub, kind, field, value, marker, want in (
            ("first-order", "first_order_limit", "ratio", None, "held-out", "FAIL"),
            ("first-order-sampled", "first_order_sampled", "ratio", None, "no step", "FAIL"),
            ("first-order-sampled", "first_order_sampled", "ratio", 0.95, "deficit 0.93 rejected", "FAIL"),
            ("first-order-sampled", "first_order_sampled", "mismatches", 3, "disagree", "FAIL"),
            ("forecast", "forecast_run", "logit_rms_propagated", 0.1, "propagated along its own", "PASS"),
            ("forecast", "forecast_run", "logit_rms_forecast", 0.1, "forecast from step 0", "PASS"),
            ("forecast", "forecast_run", "probe_seconds", 1.0, "probe's seconds", "PASS")):
        records = [json.loads(line) for line in (SMOLLM2_RESULTS / sub / "measurements.jsonl").read_text().splitlines()]
        for r in records:
            if r["experiment"] == kind:
                r[field] = 1 - 4 * r["ratio_se"] if value is None else value
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / "measurements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        changed = [c.verdict for c in smollm2_claims(tmp_path) if marker in c.statement]
        before = [v for s, v in committed.items() if marker in s]
        assert changed and set(changed) == {want} and want not in before, (sub, field, changed, before)
        if sub in ("forecast", "first-order-sampled"):  # restore for the next case
            (tmp_path / sub / "measurements.jsonl").write_text((SMOLLM2_RESULTS / sub / "measurements.jsonl").read_text())


def test_no_folder_no_claims(tmp_path):
    assert smollm2_claims(tmp_path / "absent") == []
