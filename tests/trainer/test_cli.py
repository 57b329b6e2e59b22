"""The ``dogbreed`` group: help without importing the subcommands (and torch), -h everywhere."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from dogbreed.cli import SUBCOMMANDS, main


def test_group_help_lists_every_command_without_importing_torch():
    # A fresh interpreter: this test process has imported torch long ago.
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dogbreed.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch imported: False" in output
    for name in SUBCOMMANDS:
        assert f"  {name} " in output


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_listed_help_is_the_commands_own(name):
    command = main.get_command(click.Context(main), name)
    assert SUBCOMMANDS[name][1] == command.get_short_help_str(limit=1000)


@pytest.mark.parametrize("args", [["-h"], ["package", "-h"], ["evaluate", "-h"], ["launch", "-h"], ["train", "-h"]])
def test_short_help_flag_everywhere(args):
    result = CliRunner().invoke(main, args, prog_name="dogbreed")
    assert result.exit_code == 0, result.output
    assert result.output.lower().startswith(f"usage: {' '.join(['dogbreed', *args[:-1]])}")


def test_the_torch_free_backbone_list_equals_the_artifacts_own():
    # choices.BACKBONES exists so that flags can be declared without torch; the serving package's list
    # (copied into every artifact) is the definition, and a drift would offer a backbone that cannot load.
    from dogbreed import choices
    from dogbreed.serving import architectures

    assert choices.BACKBONES == architectures.BACKBONES


def test_train_flags_are_declared_and_parsed_without_torch():
    # The one declaration of train's flags must stay importable without torch, so that the commands
    # built on it can answer --help and reject a mistyped flag quickly.
    code = (
        "import sys\n"
        "from dogbreed.training.arguments import get_args_parser\n"
        "args = get_args_parser().parse_args(['--data', 'photos', '--epochs', '3'])\n"
        "assert args.epochs == 3, args.epochs\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
