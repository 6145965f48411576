"""The `prodromal` command line. Heavy libraries are imported inside commands so `--help` stays fast.

Each command is a thin shell over a module: parse arguments, call, print.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="prodromal: early infection detection from wearables.", no_args_is_help=True, add_completion=False)
import_app = typer.Typer(help="Import recorded cohorts into the prodromal cohort format.", no_args_is_help=True)
app.add_typer(import_app, name="import")

DATA_DEFAULT = Path("../shared/data")


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


# ---- commands are added below, one block each ----


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
