"""The ``dogbreed`` command. Subcommands live in their own modules and are imported on first use,
so ``dogbreed --help`` stays fast and one broken subcommand cannot break the others."""

from __future__ import annotations

import importlib

import click

# name -> ("module:attribute" of a click command, its one-line help). The help is written here so that
# `dogbreed --help` lists the commands without importing them (and torch); a test keeps it equal to
# each command's own short help.
SUBCOMMANDS = {
    "train": (
        "dogbreed.commands.train:command",
        "Train a breed classifier; writes model.tar.gz and a report (dogbreed train --help lists every flag).",
    ),
    "evaluate": ("dogbreed.evaluation:evaluate_command", "Evaluate a model artifact on labelled photos and write a report."),
    "package": ("dogbreed.commands.package:command", "Write a model artifact (model.tar.gz) for SageMaker and `dogbreed serve`."),
    "serve": (
        "dogbreed.commands.serve:command",
        "Serve a model artifact over HTTP like a SageMaker endpoint (GET /ping, POST /invocations, "
        "POST /endpoints/NAME/invocations).",
    ),
    "tune": ("dogbreed.commands.tune:command", "Search hyperparameters of `dogbreed train` with Optuna (TPE + median pruning)."),
    "profile": (
        "dogbreed.commands.profile:command",
        "Profile N training steps of `dogbreed train` and write an HTML report with findings.",
    ),
    "launch": ("dogbreed.commands.launch:command", "Run training or hyperparameter tuning as SageMaker jobs (boto3; needs AWS credentials)."),
    "verify": (
        "dogbreed.commands.verify:command",
        "Load ARTIFACT as the SageMaker container does and classify one image; exit 1 on any failure.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module_name, attribute = SUBCOMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dogbreed-trainer")
def main() -> None:
    """Train, evaluate, package and serve a dog-breed classifier."""
