"""Train the recipe of a profile on a pairs file: the entry point for one or several processes.

    python -m cardioembed.training.cli --profile teaching --pairs pairs.parquet --output runs/x
    torchrun --nproc_per_node 2 -m cardioembed.training.cli --profile paper --pairs ... \\
        --gather-across-devices -p batch_size=64

The recipe is notebook 02's defaults, the profile's values and the `-p name=value`
overrides, as `cardioembed run` gives them. Every process trains on its own shard.
"""

from __future__ import annotations

import argparse
import os
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
    p.add_argument("--record-anchors", default=None, help="folder for anchors_rank<r>.txt")
    args = p.parse_args(argv)
    try:
        import pandas as pd

        from cardioembed.profiles import notebook_values, parse_overrides
        from cardioembed.training.recipe import Recipe, train

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
            callbacks=[record_anchors(args.record_anchors)] if args.record_anchors else None,
        )
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        state = "finished" if result.finished else "stopped"
        print(
            f"{state} at step {result.global_step} in {result.seconds:.1f} s: {result.output_dir}"
        )
    return 0


def record_anchors(folder: str):
    """A trainer callback that appends every anchor this process trains on to
    `<folder>/anchors_rank<r>.txt` (to check the sharding across processes)."""
    from transformers import TrainerCallback

    path = Path(folder) / f"anchors_rank{os.environ.get('RANK', '0')}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)

    class RecordAnchors(TrainerCallback):
        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            # accelerate wraps the trainer's DataLoader; the batches come from the one inside
            loader = getattr(train_dataloader, "base_dataloader", train_dataloader)
            collate = loader.collate_fn

            def recording(features):
                with open(path, "a") as handle:
                    handle.writelines(str(f["anchor"]).replace("\n", " ") + "\n" for f in features)
                return collate(features)

            loader.collate_fn = recording

    return RecordAnchors()


if __name__ == "__main__":
    sys.exit(main())
