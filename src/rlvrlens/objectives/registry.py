"""One registry type for the catalogue's schemes and the framework presets (issue 12, item 5).

An :class:`Entry` holds a builder ``build(M, **params) -> WeightScheme``, the name of the
``M -> infinity`` limit of ``h_M`` for the default parameters (a key of
:data:`rlvrlens.objectives.LIMITS`, or None), and, for framework presets, the framework and the
configuration it reproduces. A :class:`Registry` is a read-only mapping name -> entry with the one
copy of the parameter lookup and of the unknown-name / unknown-parameter checks.

Examples
--------
>>> reg = Registry("scheme", [Entry("double", lambda M, k=2.0: None)])
>>> reg.parameters("double")
{'k': 2.0}
>>> reg.build("double", 4, q=1)
Traceback (most recent call last):
...
ValueError: scheme 'double' does not take parameter(s) q; it takes: k
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from rlvrlens.objectives.scheme import WeightScheme


@dataclass(frozen=True)
class Entry:
    """A registered scheme builder.

    Attributes
    ----------
    name : str
        Registry key.
    build : callable
        ``build(M, **params) -> WeightScheme``; its keyword parameters and defaults are the entry's.
    limit : str or None
        Name of the ``M -> infinity`` limit of ``h_M`` with the default parameters.
    framework, config : str
        For framework presets: the framework and the configuration reproduced ("" otherwise).
    """

    name: str
    build: Callable[..., WeightScheme]
    limit: str | None = None
    framework: str = ""
    config: str = ""

    @property
    def summary(self) -> str:
        """The first paragraph of the builder's docstring, on one line."""
        doc = (inspect.getdoc(self.build) or "").split("\n\n")[0]
        return " ".join(doc.split())

    def parameters(self) -> dict[str, Any]:
        """Keyword parameters of the builder and their defaults (``inspect.Parameter.empty`` where
        required)."""
        sig = inspect.signature(self.build)
        return {p.name: p.default for p in list(sig.parameters.values())[1:]}

    @property
    def batch_level(self) -> bool:
        """Whether some setting uses a batch statistic (the builder takes ``p_batch``)."""
        return "p_batch" in self.parameters()

    def __call__(self, M: int, **params: Any) -> WeightScheme:
        """Build for group size ``M``; the builder's own checks apply."""
        return self.build(M, **params)


class Registry(Mapping[str, Entry]):
    """Read-only mapping ``name -> Entry`` with checked lookup and building."""

    def __init__(self, kind: str, entries: Iterable[Entry]) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            if entry.name in self._entries:
                raise ValueError(f"duplicate {kind} name {entry.name!r}")
            self._entries[entry.name] = entry

    def __getitem__(self, name: str) -> Entry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries: {', '.join(self._entries)})"

    def entry(self, name: object) -> Entry:
        """The entry called ``name``; a ValueError listing the valid names otherwise."""
        try:
            return self._entries[name]  # type: ignore[index]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self._entries)}") from None

    def parameters(self, name: str) -> dict[str, Any]:
        """Keyword parameters of ``name`` with their defaults."""
        return self.entry(name).parameters()

    def build(self, name: str, M: int, **params: Any) -> WeightScheme:
        """Build ``name`` for ``M`` with ``params``, refusing parameters it does not take."""
        entry = self.entry(name)
        allowed = entry.parameters()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"{self.kind} {name!r} does not take parameter(s) {', '.join(unknown)}; "
                             f"it takes: {', '.join(allowed) or 'none besides M'}")
        return entry.build(M, **params)

