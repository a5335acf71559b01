"""``python -m benchmarks``: run every ``benchmarks/bench_*.py`` in turn (or those named)."""

import importlib
import pathlib
import sys

names = sys.argv[1:] or sorted(p.stem for p in pathlib.Path(__file__).parent.glob("bench_*.py"))
for name in names:
    print(f"==== {name}")
    importlib.import_module(f"benchmarks.{name}").main()
