"""The `cardioembed` command: `run` executes notebooks with a profile, `book` renders the
last successful run of a profile, `search` searches its corpus with the trained model."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path

from cardioembed.book.runner import NotebookFailed, build_book, run_profile
from cardioembed.envinfo import format_duration
from cardioembed.errors import InputError
from cardioembed.profiles import available_profiles, load_profile, parse_overrides

INTERRUPTED = 130  # the exit status of a program stopped by Ctrl-C (128 + SIGINT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardioembed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Every command but `profiles` works on one profile's run folder.
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--profile", default="teaching", help="in profiles/ (default: teaching)")
    many = {"action": "append", "default": []}  # repeatable

    run = sub.add_parser("run", parents=[where], help="execute the notebooks with a profile")
    run.add_argument("--only", **many, metavar="NN", help="only this notebook, by number or name")
    run.add_argument("-p", "--param", **many, metavar="KEY=VALUE", help="e.g. temperature=0.02")
    run.add_argument("--output-dir", type=Path, help="default: <runs_root>/<profile>/executed")
    run.add_argument("--no-wait", action="store_true", help="fail if another run holds the profile")

    book = sub.add_parser("book", parents=[where], help="render a profile's last successful run")
    book.add_argument("--executed", type=Path, help="render these executed notebooks instead")
    book.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")

    search = sub.add_parser("search", parents=[where], help="search a profile's corpus")
    search.add_argument("query", help="what to look for, e.g. 'irregular heartbeat'")
    search.add_argument("--model", default="", help="a run, 'base' or a folder (default: main)")
    search.add_argument("--top", type=int, default=5, help="how many passages")
    for command in (book, search):
        command.add_argument("--runs-root", default="", help="the runs_root of the run, if any")

    sub.add_parser("profiles", help="list the available profiles")
    return parser


def _command(args: argparse.Namespace) -> None:
    if args.command == "profiles":
        for name in available_profiles():
            print(f"{name}: {load_profile(name).description.strip()}")
    elif args.command == "run":
        profile = load_profile(args.profile).with_overrides(parse_overrides(args.param))
        started = time.perf_counter()
        results = run_profile(
            profile, only=args.only, output_dir=args.output_dir, wait=not args.no_wait
        )
        took = format_duration(time.perf_counter() - started)
        print(f"{len(results)} notebook(s) executed in {took}; published in {results[0].parent}")
    elif args.command == "book":
        run = {"profile": args.profile, "runs_root": args.runs_root, "executed": args.executed}
        print(f"book built: open {build_book(strict=not args.no_strict, **run)}")
    elif args.command == "search":
        os.environ.setdefault("TQDM_DISABLE", "1")  # no loading bars around the answer
        from cardioembed.evaluation.search import search

        searched, hits = search(args.profile, args.model, args.runs_root, args.query, args.top)
        print(f"{searched} (profile {args.profile}):")
        for hit in hits.itertuples():
            print(f"{hit.rank:>3}. {hit.score:.3f}  {hit.passage}")


def _for_this_profile(message: object, args: argparse.Namespace) -> str:
    """The package's hints say `cardioembed run`; the profile (and runs_root) they are for
    are known here."""
    if not hasattr(args, "profile"):
        return str(message)
    given = dict(p.partition("=")[::2] for p in getattr(args, "param", []))
    runs_root = given.get("runs_root") or getattr(args, "runs_root", "")
    where = f"--profile {args.profile}" + (f" -p runs_root={runs_root}" if runs_root else "")
    return re.sub(r"cardioembed run(?! --profile)", f"cardioembed run {where}", str(message))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The package's log lines (one per notebook, the preflight's) reach the terminal as is.
    terminal = logging.StreamHandler(sys.stdout)
    terminal.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("cardioembed")
    package_logger.setLevel(logging.INFO)
    package_logger.addHandler(terminal)
    try:
        _command(args)
        return 0
    except (InputError, NotebookFailed) as exc:
        print(f"cardioembed: {_for_this_profile(exc, args)}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
    except KeyboardInterrupt as exc:  # a run's says what was kept; a bare one is empty
        print(f"cardioembed: {str(exc) or f'{args.command} interrupted'}", file=sys.stderr)
        return INTERRUPTED
    finally:
        package_logger.removeHandler(terminal)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
