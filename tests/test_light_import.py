"""At run time: ``import rlvrlens``, the torch-free layers and building the whole command line import
neither torch nor transformers (tests/test_layers.py checks each module's own imports statically;
this catches what a lazy import chain pulls in). One subprocess for the whole check."""

import subprocess
import sys


def test_light_layers_and_the_cli_do_not_import_torch():
    code = (
        "import sys, rlvrlens, rlvrlens.core.checks, rlvrlens.core.kl, rlvrlens.core.logit, rlvrlens.core.records\n"
        "import rlvrlens.objectives, rlvrlens.dynamics, rlvrlens.explain, rlvrlens.figures.explain\n"
        "import rlvrlens.training.config, rlvrlens.training.rundir, rlvrlens.validation.sizes\n"
        "import rlvrlens.validation.verdicts, rlvrlens.commands.dynamics, rlvrlens.cli\n"
        "rlvrlens.cli.build_parser()\n"
        "bad = [m for m in ('torch', 'transformers', 'trl') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
