"""``dogbreed train``: train's flags (``training.arguments``) as a click command; torch is imported only
once they parse, so ``--help`` and a mistyped flag answer at once."""

from __future__ import annotations

import click

from ..training.arguments import TrainCommand, namespace
from ..training.logs import configure_logging


class _TrainCli(TrainCommand):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        configure_logging()  # before parsing: it logs the SageMaker arguments it ignores
        return super().parse_args(ctx, args)


@click.pass_context
def _train(ctx: click.Context, **params) -> None:
    from ..train import run_command

    ctx.exit(run_command(namespace(ctx.command, params), prog="dogbreed train"))


command = _TrainCli("train", callback=_train)
