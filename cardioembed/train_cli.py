"""Train a LoRA adapter from a pairs file: the entry point for one or several processes.

    python -m cardioembed.train_cli --pairs pairs.parquet --output runs/x/models/run
    torchrun --nproc_per_node 2 -m cardioembed.train_cli --pairs ... --gather-across-devices

On CPU, torchrun uses the gloo backend (`accelerate launch --cpu` does not initialise
the process group with this stack). Every process gets its own shard of the data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import InputError


def _targets(text: str):
    return "auto" if text == "auto" else tuple(t.strip() for t in text.split(",") if t.strip())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m cardioembed.train_cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pairs", required=True, help="parquet (or csv) of pairs")
    p.add_argument("--output", required=True, help="run folder to write")
    p.add_argument("--base", default="minilm")
    p.add_argument("--pooling", default="eos", choices=["eos", "mean", "cls", "weightedmean"])
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--query-instruction", default=None)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument(
        "--lora-targets",
        type=_targets,
        default="auto",
        help="'auto' or comma-separated module names",
    )
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--mini-batch-size", type=int, default=None)
    p.add_argument("--hard-negatives", action="store_true")
    p.add_argument("--eval-steps", type=int, default=100)
    p.add_argument("--save-steps", type=int, default=100)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--gather-across-devices", action="store_true")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--stop-after-steps", type=int, default=None)
    p.add_argument("--keep-checkpoints", action="store_true")
    p.add_argument("--record-anchors", default=None, help="folder for anchors_rank<r>.txt")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import pandas as pd

        from .modeling import LoraSpec, ModelSpec
        from .training import TrainConfig, train

        path = Path(args.pairs)
        if not path.is_file():
            raise InputError(f"pairs file {path} does not exist")
        pairs = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        model_spec = ModelSpec(
            args.base, args.pooling, args.max_seq_length, args.query_instruction, args.dtype
        )
        lora_spec = LoraSpec(args.lora_rank, args.lora_alpha, args.lora_dropout, args.lora_targets)
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_ratio=args.warmup_ratio,
            seed=args.seed,
            temperature=args.temperature,
            mini_batch_size=args.mini_batch_size,
            use_hard_negatives=args.hard_negatives,
            eval_steps=args.eval_steps,
            save_steps=args.save_steps,
            max_steps=args.max_steps,
            gradient_checkpointing=args.gradient_checkpointing,
            gather_across_devices=args.gather_across_devices,
        )
        result = train(
            pairs,
            model_spec,
            lora_spec,
            config,
            args.output,
            resume=not args.no_resume,
            progress=not args.no_progress,
            cache=args.cache_dir,
            stop_after_steps=args.stop_after_steps,
            keep_checkpoints=args.keep_checkpoints,
            record_anchors_to=args.record_anchors,
        )
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import os

    if os.environ.get("RANK", "0") == "0":
        state = "finished" if result.finished else "stopped"
        print(
            f"{state} at step {result.global_step} in {result.seconds:.1f} s: {result.output_dir}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
