"""The ``argyro`` command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import ArgyroError
from . import analysis as analysis_cmds
from . import build as build_cmds
from . import db as db_cmds
from . import fw as fw_cmds
from . import md as md_cmds
from . import rehearse as rehearse_cmds
from . import study as study_cmds
from . import vasp as vasp_cmds

GROUPS = [db_cmds, fw_cmds, study_cmds, build_cmds, vasp_cmds, md_cmds, analysis_cmds, rehearse_cmds]
RENDERERS = [vasp_cmds, md_cmds]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="argyro",
        description=(
            "Run the Li-metal | Li6PS5Cl interface study as FireWorks workflows: embedded MongoDB, "
            "launchpad files, structure builders, VASP/MACE/LAMMPS inputs and trajectory analysis."
        ),
    )
    parser.add_argument("--version", action="version", version=f"argyro {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="argyro config YAML (keys: db.uri, db.name, db.username, ...); default $ARGYRO_CONFIG"
    )
    parser.add_argument(
        "--uri", metavar="URI", help="use this MongoDB (mongodb://[user@]host:port/db) instead of the embedded one; default $ARGYRO_DB_URI"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    render = sub.add_parser("render", help="write the exact inputs and job script a firework would run")
    rsub = render.add_subparsers(dest="render_command", metavar="WHAT", required=True)
    for group in RENDERERS:
        group.register_render(rsub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..interrupt import install_cli

    restore = install_cli()  # Ctrl-C: KeyboardInterrupt, a hard stop 8 s later or at a second Ctrl-C
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        restore()


def _main(argv: list[str]) -> int:
    # pass-through commands hand their arguments to FireWorks untouched
    if argv and argv[0] in fw_cmds.PASSTHROUGH:
        try:
            return fw_cmds.passthrough(argv[0], argv[1:])
        except ArgyroError as exc:
            print(f"argyro {argv[0]}: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ArgyroError as exc:
        print(f"argyro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("argyro: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
