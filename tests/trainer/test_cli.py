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
