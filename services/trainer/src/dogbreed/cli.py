"""The ``dogbreed`` command. Subcommands live in their own modules and are imported on first use,
so ``dogbreed --help`` stays fast and one broken subcommand cannot break the others."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command
SUBCOMMANDS = {
    "train": "dogbreed.train:train_command",
    "evaluate": "dogbreed.evaluation:evaluate_command",
    "package": "dogbreed.artifact:package_command",
    "serve": "dogbreed.server:serve_command",
    "tune": "dogbreed.tuning:tune_command",
    "profile": "dogbreed.profiling:profile_command",
    "launch": "dogbreed.launch:launch_group",
    "verify": "dogbreed.verify:verify_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup)
@click.version_option(package_name="dogbreed-trainer")
def main() -> None:
    """Train, evaluate, package and serve a dog-breed classifier."""
