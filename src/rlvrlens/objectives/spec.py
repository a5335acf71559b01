"""A weight scheme named in a framework's configuration file, built for whatever group size occurs.

A framework that calls rlvrlens from its own configuration (verl's ``algorithm.rlvrlens`` block, see
``docs/verl.md``) names the scheme in one of three ways:

* ``scheme: NAME`` with optional ``params: {...}``: a catalogue scheme (:data:`rlvrlens.objectives.SCHEMES`,
  ``rlvrlens schemes``), e.g. ``scheme: pass_at_k, params: {k: 4}``;
* ``target: "log(t/(1-t))"`` with optional ``design: {method: minimax, max_weight: 20, ...}``: weights
  designed for that ``h`` by :func:`rlvrlens.objectives.design` (its keyword options);
* ``scheme_file: PATH``: a saved scheme, the JSON printed by ``rlvrlens design --json`` (or any JSON
  object holding ``WeightScheme.describe()``'s ``M``, ``a``, ``b``, at the top level or under ``"scheme"``).

A catalogue name and a target give a scheme for every group size ``M`` (a framework's groups can
differ in size: filtered or failed samples); a saved file holds one ``M`` and refuses others.
:func:`scheme_spec` checks a block once and returns a :class:`SchemeSpec`, whose :meth:`SchemeSpec.build`
is cached per ``M``.

Examples
--------
>>> spec = scheme_spec({"scheme": "rloo"})
>>> spec.build(4).weights([1, 0, 0, 1]).tolist()
[0.6666666666666667, -0.6666666666666666, -0.6666666666666666, 0.6666666666666667]
>>> spec.describe()
{'scheme': 'rloo', 'params': {}}
>>> scheme_spec({"target": "t", "design": {"method": "lsq"}}).build(3).name
'design[t]'
>>> scheme_spec({"scheme": "rloo", "target": "t"})
Traceback (most recent call last):
...
ValueError: algorithm.rlvrlens: give one of scheme, target, scheme_file (got scheme, target)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rlvrlens.objectives.catalogue import SCHEMES, get_scheme, scheme_parameters
from rlvrlens.objectives.design import design
from rlvrlens.objectives.scheme import WeightScheme

#: The keys that name the scheme (exactly one of them).
KINDS = ("scheme", "target", "scheme_file")
#: Keyword options of :func:`rlvrlens.objectives.design` a ``design:`` block may set.
DESIGN_OPTIONS = ("split", "nodes", "interval", "method", "max_weight", "monotone")


@dataclass(frozen=True, eq=False)
class SchemeSpec:
    """A scheme named in a configuration (see the module docstring); build it with :meth:`build`.

    Attributes
    ----------
    kind : {"scheme", "target", "scheme_file"}
        How the configuration names it.
    value : str
        The catalogue name, the target expression or the file's path.
    options : dict
        The catalogue parameters (``params``) or the design options (``design``); empty for a file.
    where : str
        The configuration block, for messages (``"algorithm.rlvrlens"``).
    saved : WeightScheme or None
        The scheme read from ``scheme_file``.
    """

    kind: str
    value: str
    options: dict[str, Any] = field(default_factory=dict)
    where: str = "algorithm.rlvrlens"
    saved: WeightScheme | None = None
    _built: dict[int, WeightScheme] = field(default_factory=dict, repr=False)

    def build(self, M: int) -> WeightScheme:
        """The scheme for groups of ``M`` answers (cached).

        Raises
        ------
        ValueError
            For a saved scheme of another group size, or a scheme that does not exist for ``M``
            (the message names the block and ``M``).
        """
        if M in self._built:
            return self._built[M]
        if self.kind == "scheme_file":
            if M != self.saved.M:
                raise ValueError(f"{self.where}.scheme_file: {self.value} holds a scheme for groups of M = "
                                 f"{self.saved.M} answers, got a group of {M}; name the scheme by "
                                 "'scheme' or 'target' to have it for every group size")
            return self.saved
        try:
            if self.kind == "scheme":
                scheme = get_scheme(self.value, M, **self.options)
            else:
                scheme = design(self.value, M, **self.options).scheme
        except (TypeError, ValueError) as err:
            raise ValueError(f"{self.where}: {self.kind} {self.value!r} for groups of M = {M}: {err}") from None
        self._built[M] = scheme
        return scheme

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON (what a run records next to its per-group rewards)."""
        if self.kind == "scheme":
            return {"scheme": self.value, "params": dict(self.options)}
        if self.kind == "target":
            return {"target": self.value, "design": dict(self.options)}
        return {"scheme_file": self.value}


def scheme_spec(block: Mapping[str, Any], where: str = "algorithm.rlvrlens", M: int | None = None) -> SchemeSpec:
    """Check a configuration block naming a scheme (module docstring) and return its :class:`SchemeSpec`.

    Names, keys and design options are checked here, a saved file is read, and with ``M`` the
    scheme is built for groups of ``M`` (a wrong parameter or target fails here, not at the first
    batch), each failure one line naming ``where`` and the key.

    Parameters
    ----------
    block : mapping
        ``{"scheme": NAME, "params": {...}}``, ``{"target": EXPR, "design": {...}}`` or
        ``{"scheme_file": PATH}`` (plain values: lists, dicts, strings, numbers).
    where : str
        The block's place in its configuration, for messages.
    M : int, optional
        The group size the configuration samples (verl's ``actor_rollout_ref.rollout.n``): build for it.

    Raises
    ------
    ValueError
        For a block that names no scheme or several, an unknown key, or a scheme that cannot be built.
    """
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping naming the scheme ({', '.join(KINDS)}), "
                         f"got {type(block).__name__}")
    given = [k for k in KINDS if block.get(k) is not None]
    if len(given) != 1:
        raise ValueError(f"{where}: give one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
    kind = given[0]
    allowed = {"scheme": {"scheme", "params"}, "target": {"target", "design"}, "scheme_file": {"scheme_file"}}[kind]
    extra = sorted(set(block) - allowed)
    if extra:
        raise ValueError(f"{where}: {', '.join(extra)} do(es) not apply with {kind!r} (it takes: "
                         f"{', '.join(sorted(allowed))})")
    value = block[kind]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.{kind} must be a non-empty string, got {value!r}")
    if kind == "scheme_file":
        spec = SchemeSpec(kind, value, {}, where, load_scheme(value, f"{where}.scheme_file"))
    else:
        key = "params" if kind == "scheme" else "design"
        options = block.get(key) or {}
        if not isinstance(options, Mapping):
            raise ValueError(f"{where}.{key} must be a mapping, got {type(options).__name__}")
        options = {str(k): (tuple(v) if isinstance(v, list) else v) for k, v in options.items()}
        if kind == "scheme" and value not in SCHEMES:
            raise ValueError(f"{where}.scheme: unknown scheme {value!r}; the catalogue: {', '.join(SCHEMES)}")
        allowed_options = DESIGN_OPTIONS if kind == "target" else tuple(scheme_parameters(value))
        unknown = sorted(set(options) - set(allowed_options))
        if unknown:
            raise ValueError(f"{where}.{key}: unknown option(s) {', '.join(unknown)} for {kind} {value!r}; it "
                             f"takes: {', '.join(allowed_options) or 'none'}")
        spec = SchemeSpec(kind, value, options, where)
    if M is not None:
        spec.build(M)
    return spec


def scheme_from_description(data: Mapping[str, Any], what: str = "scheme") -> WeightScheme:
    """A :class:`WeightScheme` from its JSON description.

    The description is ``WeightScheme.describe()``, or an object holding one under ``"scheme"``, as
    ``rlvrlens design --json`` prints it.

    Parameters
    ----------
    data : mapping
        The parsed JSON: needs ``"M"``, ``"a"`` and ``"b"``; ``"name"`` and ``"params"`` are read
        where present.
    what : str, default "scheme"
        What the errors call the description.

    Returns
    -------
    WeightScheme
        The scheme (no formula for real-valued rewards, no exact coefficients).

    Raises
    ------
    ValueError
        If ``data`` is not a mapping, lacks ``M``, ``a`` or ``b``, or describes an invalid scheme.

    Examples
    --------
    >>> from rlvrlens.objectives import log_odds
    >>> scheme_from_description({"scheme": log_odds(4).describe()}) == log_odds(4)
    True
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
    inner = data.get("scheme")
    if isinstance(inner, Mapping):
        data = inner
    missing = [k for k in ("M", "a", "b") if k not in data]
    if missing:
        raise ValueError(f"{what}: not a weight scheme (it lacks {', '.join(missing)}); save one with "
                         "rlvrlens design --json")
    try:
        return WeightScheme(data["M"], data["a"], data["b"], name=str(data.get("name", "custom")),
                            params=dict(data.get("params") or {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: {err}") from None


def load_scheme(path: str | Path, what: str = "scheme_file") -> WeightScheme:
    """Read a scheme saved as JSON (:func:`scheme_from_description`); errors name ``what`` and the file.

    Parameters
    ----------
    path : str or Path
        A JSON file, e.g. the output of ``rlvrlens design --json``.
    what : str, default "scheme_file"
        What the errors call the file (e.g. the option it came from).

    Returns
    -------
    WeightScheme
        The scheme the file describes.

    Raises
    ------
    ValueError
        If the file cannot be read, is not JSON, or does not describe a valid scheme.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"{what}: cannot read {path} ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{what}: {path} is not JSON (save the scheme with rlvrlens design --json > FILE)") from None
    return scheme_from_description(data, f"{what} {path}")
