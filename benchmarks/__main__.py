"""``python -m benchmarks``: run every ``benchmarks/bench_*.py`` in turn (or those named), each with
its default arguments."""

import importlib
import pathlib
import sys

names = sys.argv[1:] or sorted(p.stem for p in pathlib.Path(__file__).parent.glob("bench_*.py"))
for name in names:
    print(f"==== {name}", flush=True)
    sys.argv = [f"benchmarks/{name}.py"]  # each benchmark parses its own (default) options
    importlib.import_module(f"benchmarks.{name}").main()
