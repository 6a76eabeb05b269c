"""The `cardioembed` command: `run` executes notebooks with a profile, `book` renders."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import InputError
from .profiles import available_profiles, load_profile, parse_overrides
from .runner import NotebookFailed, build_book, run_profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardioembed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the study's notebooks with a profile")
    run.add_argument(
        "--profile", default="teaching", help="a file in profiles/ (default: teaching)"
    )
    run.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NN",
        help="run only this notebook, by number or name (repeatable)",
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. -p temperature=0.02 (repeatable)",
    )
    run.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where executed notebooks go (default: book/executed)",
    )

    book = sub.add_parser("book", help="render the executed notebooks with Jupyter Book")
    book.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")

    sub.add_parser("profiles", help="list the available profiles")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "profiles":
            for name in available_profiles():
                print(f"{name}: {load_profile(name).description.strip()}")
            return 0
        if args.command == "run":
            profile = load_profile(args.profile).with_overrides(parse_overrides(args.param))
            started = time.perf_counter()
            results = run_profile(profile, only=args.only, output_dir=args.output_dir)
            print(f"{len(results)} notebook(s) executed in {time.perf_counter() - started:.1f} s")
            return 0
        if args.command == "book":
            index = build_book(strict=not args.no_strict)
            print(f"book built: open {index}")
            return 0
    except InputError as exc:
        print(f"cardioembed: {exc}", file=sys.stderr)
        return 2
    except NotebookFailed as exc:
        print(f"cardioembed: {exc}", file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
