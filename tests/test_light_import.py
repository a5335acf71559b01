"""The core and the theory layers import without torch."""

import subprocess
import sys


def test_theory_layers_do_not_import_torch():
    code = (
        "import sys, rlvrlens, rlvrlens.objectives, rlvrlens.dynamics, rlvrlens.figures, rlvrlens.cli\n"
        "import rlvrlens.explain, rlvrlens.frameworks, rlvrlens.runs, rlvrlens.figures.explain\n"
        "rlvrlens.cli.build_parser()\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
