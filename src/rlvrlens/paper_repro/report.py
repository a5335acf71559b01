"""What a reproduction returns, and the index page that shows all of them.

Each paper module's ``run(out_dir)`` returns a :class:`Reproduction`: its figures (files written
and a caption), its tables, its claims with their verdicts, and notes. :func:`write_index` renders
any number of them as one self-contained HTML page (inline style, relative image links) plus a
``claims.json`` with every claim. Each claim shows its kind (the paper's published result, an
independent computation, a consistency check that cannot fail, or a stored measurement re-read from
a committed file; the last two are not counted among the claims that can fail), its verdict (PASS,
FAIL or INCONCLUSIVE: an effect inside the noise) and its explanation where it has one.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rlvrlens.core.records import json_ready
from rlvrlens.paper_repro.claims import KINDS, UNCOUNTED, Claim, counted, summary, tally


@dataclass(frozen=True)
class FigureFile:
    """A figure a reproduction wrote: a short name, a caption, and its files (PNG first)."""

    name: str
    caption: str
    files: tuple[Path, ...]

    @property
    def png(self) -> Path:
        """The PNG file (the one the index page shows)."""
        for f in self.files:
            if f.suffix == ".png":
                return f
        raise ValueError(f"figure {self.name!r} has no PNG file among {self.files}")


@dataclass(frozen=True)
class Table:
    """A table of a reproduction: a caption, column headers and rows of cells."""

    name: str
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass
class Reproduction:
    """Everything one paper's reproduction produced."""

    key: str
    title: str
    reference: str
    figures: list[FigureFile] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .92em; color: #333; margin-top: .3em; }
table { border-collapse: collapse; font-size: .88em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-family: monospace; }
.PASS { color: #0a6b20; font-weight: bold; } .FAIL { color: #b00020; font-weight: bold; }
.INCONCLUSIVE { color: #8a5a00; font-weight: bold; } tr.consistency td { color: #777; }
tr.stored td { background: #f4f4fb; } .why { color: #444; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .4em .8em; margin: .6em 0; }
.ref { color: #555; font-style: italic; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _cell(x: Any) -> str:
    if isinstance(x, float):
        return f'<td class="num">{x:.4g}</td>'
    return f"<td>{_e(x)}</td>"


#: How each kind is named on the page.
KIND_LABELS = {"paper": "paper", "independent": "independent", "consistency": "consistency check",
               "stored": "stored measurement (not recomputed; not counted)"}


def _claims_table(claims: Sequence[Claim]) -> str:
    rows = []
    for c in claims:
        measured = "—" if c.error else f"{c.measured:.6g}"
        if not c.error and c.noise and math.isfinite(c.noise):
            measured += f" ± {c.noise:.2g}"
        detail = f"<br><small>{_e(c.error)}</small>" if c.error else ""
        if c.explanation:
            detail += f'<br><small class="why">Explanation: {_e(c.explanation)}</small>'
        rows.append(
            f'<tr class="{c.kind}"><td class="{c.verdict}">{c.verdict}</td><td>{_e(KIND_LABELS[c.kind])}</td>'
            f'<td>{_e(c.statement)}{detail}</td><td class="num">{measured}</td><td>{_e(c.criterion)}</td>'
            f"<td>{_e(c.source)}</td></tr>"
        )
    return ("<table><tr><th>verdict</th><th>kind</th><th>claim</th><th>measured x (± se)</th><th>criterion</th>"
            "<th>source</th></tr>" + "".join(rows) + "</table>")


def counts_line(claims: Sequence[Claim]) -> str:
    """``"12 of 14 claims pass (paper 3/4, independent 9/10), 1 inconclusive, 1 fail; 5 consistency checks;
    6 stored (4 pass, 1 inconclusive, 1 fail)"``.

    Consistency checks (which cannot fail for a wrong implementation) and stored claims (re-read from
    a committed measurement, not recomputed) are counted apart from the claims that can fail.
    """
    t = tally(list(claims))
    passed, total = summary(list(claims))
    per_kind = ", ".join(f"{k} {t[k]['PASS']}/{sum(t[k].values())}" for k in KINDS if k not in UNCOUNTED)
    inconclusive = sum(t[k]["INCONCLUSIVE"] for k in KINDS if k not in UNCOUNTED)
    failed = sum(t[k]["FAIL"] for k in KINDS if k not in UNCOUNTED)
    n_cons = sum(t["consistency"].values())
    cons = f"; {n_cons} consistency check{'s' if n_cons != 1 else ''}" if n_cons else ""
    if t["consistency"]["FAIL"] or t["consistency"]["INCONCLUSIVE"]:
        cons += f" ({t['consistency']['PASS']} pass)"
    n_stored = sum(t["stored"].values())
    if n_stored:
        cons += (f"; {n_stored} stored (re-read from committed measurements, not counted: {t['stored']['PASS']} pass, "
                 f"{t['stored']['INCONCLUSIVE']} inconclusive, {t['stored']['FAIL']} fail)")
    return (f"{passed} of {total} claims pass ({per_kind}), {inconclusive} inconclusive, {failed} fail{cons}")


def _section(rep: Reproduction, root: Path) -> str:
    parts = [f'<h2 id="{_e(rep.key)}">{_e(rep.title)}</h2>', f'<p class="ref">{_e(rep.reference)}</p>']
    parts += [f'<div class="note">{_e(n)}</div>' for n in rep.notes]
    for fig in rep.figures:
        src = Path(os.path.relpath(fig.png, root)).as_posix()
        others = " ".join(f'<a href="{_e(Path(os.path.relpath(f, root)).as_posix())}">{_e(f.suffix[1:])}</a>'
                          for f in fig.files)
        parts.append(f'<figure id="{_e(rep.key)}-{_e(fig.name)}"><img src="{_e(src)}" alt="{_e(fig.name)}">'
                     f"<figcaption><b>{_e(fig.name)}.</b> {_e(fig.caption)} [{others}]</figcaption></figure>")
    for tab in rep.tables:
        head = "".join(f"<th>{_e(h)}</th>" for h in tab.headers)
        body = "".join("<tr>" + "".join(_cell(x) for x in row) + "</tr>" for row in tab.rows)
        parts.append(f"<p><b>{_e(tab.name)}.</b> {_e(tab.caption)}</p><table><tr>{head}</tr>{body}</table>")
    parts.append(f"<h3>Claims: {_e(counts_line(rep.claims))}</h3>")
    parts.append(_claims_table(rep.claims))
    return "\n".join(parts)


def write_index(reproductions: Sequence[Reproduction], out_dir: str | Path, *,
                pending: dict[str, str] | None = None) -> Path:
    """Write ``out_dir/index.html`` (and ``out_dir/claims.json``) for ``reproductions``.

    Parameters
    ----------
    reproductions : sequence of Reproduction
        Their figure files should lie under ``out_dir`` (links are relative to it).
    out_dir : path
    pending : dict, optional
        Reproductions not available yet, ``{title: why}``; listed on the page.

    Returns
    -------
    pathlib.Path
        The index page.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    all_claims = [c for rep in reproductions for c in rep.claims]
    can_fail = counted(all_claims)
    headline = ("FAIL" if any(c.failed for c in can_fail) else
                "INCONCLUSIVE" if any(c.verdict == "INCONCLUSIVE" for c in can_fail) else "PASS")
    toc = "".join(
        f'<li><a href="#{_e(r.key)}">{_e(r.title)}</a>: {len(r.figures)} figures; '
        f"{_e(counts_line(r.claims))}</li>" for r in reproductions)
    toc += "".join(f"<li>{_e(k)}: <i>not reproduced here</i>: {_e(v)}</li>" for k, v in (pending or {}).items())
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>rlvrlens paper reproductions</title><style>{_CSS}</style></head><body>\n"
        "<h1>rlvrlens: paper reproductions</h1>\n"
        f"<p>Every figure regenerated from the library, every claim checked when this page was written: "
        f'<b class="{headline}">{_e(counts_line(all_claims))}</b>. '
        "A failing claim is shown as FAIL, never removed. Kinds: <i>paper</i>, the paper's own published "
        "result (cited by arXiv id and figure, table, equation or section); <i>independent</i>, our value "
        "against an independent computation (closed form, enumeration, quadrature, Monte Carlo); "
        "<i>consistency check</i>, a check that cannot fail for a wrong implementation (an identity, a "
        "property true by construction, the package compared with itself), shown in grey and not counted; "
        "<i>stored measurement</i>, a number re-read from a committed measurement file (a long run on a "
        "real model) rather than recomputed now, shown with its verdict but not counted. A claim whose "
        "source says <i>printed</i> compares with a number printed in the paper (arXiv id, version, figure "
        "or table); <i>computed, not printed</i> marks a value the paper shows but we could not read. "
        "A comparison of measured numbers is judged on its value ± z·se (seeds: Student's t): "
        "INCONCLUSIVE when the noise decides.</p>\n"
        f"<ul>{toc}</ul>\n" + "\n".join(_section(r, root) for r in reproductions) + "\n</body></html>\n"
    )
    index = root / "index.html"
    index.write_text(page, encoding="utf-8")
    records = {r.key: [c.as_dict() for c in r.claims] for r in reproductions}
    (root / "claims.json").write_text(json.dumps(json_ready(records), indent=2, default=float, allow_nan=False),
                                      encoding="utf-8")
    return index
