"""The index page: every figure, table, note, pending item and claim, escaped, with relative links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvrlens.paper_repro.claims import at_least, at_most, seeded
from rlvrlens.paper_repro.report import FigureFile, Reproduction, Table, write_index


def _rep(tmp_path: Path) -> Reproduction:
    sub = tmp_path / "paper"
    sub.mkdir()
    (sub / "f.png").write_bytes(b"png")
    (sub / "f.pdf").write_bytes(b"pdf")

    def boom() -> float:
        raise ZeroDivisionError("x/0")

    return Reproduction(
        "paper", "A <paper> & co", "ref",
        figures=[FigureFile("f", "caption with <b>tags</b>", (sub / "f.png", sub / "f.pdf"))],
        tables=[Table("T", "table caption", ("a", "b"), (("row", 0.5),))],
        claims=[at_most("small <x>", lambda: 1e-13, bound=1e-12), at_least("raises", boom, bound=0.0),
                at_most("identity", lambda: 0.0, bound=0.0, kind="consistency"),
                seeded("noisy", lambda: [0.2, -0.1, 0.05], kind="paper"),
                at_most("stored <run>", lambda: 0.0, bound=1.0, kind="stored", explanation="why <it> is so")],
        notes=["a note"],
    )


def test_index_page_content(tmp_path: Path) -> None:
    index = write_index([_rep(tmp_path)], tmp_path, pending={"Later paper": "needs training"})
    page = index.read_text(encoding="utf-8")
    assert '<img src="paper/f.png"' in page and 'href="paper/f.pdf"' in page
    assert "A &lt;paper&gt; &amp; co" in page and "caption with &lt;b&gt;tags&lt;/b&gt;" in page
    assert "small &lt;x&gt;" in page and "<b>tags</b>" not in page
    assert "ZeroDivisionError: x/0" in page
    assert ("1 of 3 claims pass (paper 0/1, independent 1/2), 1 inconclusive, 1 fail; 1 consistency check; "
            "1 stored (re-read from committed measurements, not counted: 1 pass, 0 inconclusive, 0 fail)") in page
    assert '<tr class="stored"><td class="PASS">PASS</td><td>stored measurement' in page
    assert "Explanation: why &lt;it&gt; is so" in page
    assert '<tr class="consistency"><td class="PASS">PASS</td><td>consistency check</td><td>identity' in page
    assert '<td class="INCONCLUSIVE">INCONCLUSIVE</td><td>paper</td><td>noisy' in page
    assert '<b class="FAIL">' in page  # the headline shows the worst verdict
    assert "Later paper" in page and "needs training" in page and "a note" in page
    assert '<td class="num">0.5</td>' in page
    records = json.loads((tmp_path / "claims.json").read_text())["paper"]
    assert [r["verdict"] for r in records] == ["PASS", "FAIL", "PASS", "INCONCLUSIVE", "PASS"]
    assert [r["kind"] for r in records] == ["independent", "independent", "consistency", "paper", "stored"]
    assert records[4]["explanation"] == "why <it> is so"
    assert records[3]["noise"] > 0 and records[3]["z"] == pytest.approx(4.303, abs=1e-3)
    assert records[1]["measured"] is None  # NaN is not JSON


def test_figure_without_png_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no PNG"):
        FigureFile("f", "c", (tmp_path / "f.pdf",)).png
