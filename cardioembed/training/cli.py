"""Train the recipe of a profile on a pairs file: the entry point for one or several processes.

    python -m cardioembed.training.cli --profile teaching --pairs pairs.parquet --output runs/x
    torchrun --nproc_per_node 2 -m cardioembed.training.cli --profile paper --pairs ... \\
        --gather-across-devices -p batch_size=64

The recipe is notebook 02's defaults, the profile's and the `-p` overrides, as in
`cardioembed run`. Every process trains on its own shard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cardioembed.errors import InputError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cardioembed.training.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pairs", required=True, help="parquet (or csv) of pairs")
    p.add_argument("--output", required=True, help="run folder to write")
    p.add_argument("--profile", default="teaching", help="profile whose recipe to train")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--gather-across-devices", action="store_true")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--stop-after-steps", type=int, default=None)
    args = p.parse_args(argv)
    try:
        import pandas as pd

        from cardioembed.profiles import notebook_values, parse_overrides
        from cardioembed.training.recipe import Recipe, rank, train

        overrides = parse_overrides(args.param)
        recipe = Recipe.from_parameters(notebook_values("02", args.profile, overrides))
        path = Path(args.pairs)
        if not path.is_file():
            raise InputError(f"pairs file {path} does not exist")
        pairs = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        result = train(
            recipe.training_pairs(pairs) if "kind" in pairs else pairs,
            recipe,
            args.output,
            resume=not args.no_resume,
            gather_across_devices=args.gather_across_devices,
            stop_after_steps=args.stop_after_steps,
        )
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if rank() == 0:
        state = "finished" if result.finished else "stopped"
        print(f"{state} at step {result.global_step} in {result.seconds:.1f} s: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
