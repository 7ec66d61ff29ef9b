"""``facegate train``: train a Siamese model (seed or identity mode) into a run directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from facegate.config import FacegateConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    p = subparsers.add_parser(
        "train",
        help="train a Siamese model; writes OUT/model (a model directory) and checkpoints",
    )
    p.add_argument(
        "--mode",
        choices=["seed", "identity"],
        required=True,
        help="seed: anchor/positive/negative folders; identity: <identity>/<images>",
    )
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="training data folder")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="run directory: checkpoints/, model/, training_curve.png",
    )
    p.add_argument(
        "--arch",
        choices=["seed", "compact"],
        default=None,
        help="architecture (default: seed in seed mode, compact in identity mode)",
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-4, help="Adam's (the seed: 1e-4)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    p.add_argument(
        "--exclude-pairs",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="LFW protocol file whose people are kept out of training (repeatable)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=5,
        help="early stopping: epochs without a lower validation loss",
    )
    p.add_argument("--input-size", type=int, default=None, help="crop side in pixels")
    p.add_argument("--embedding-dim", type=int, default=None, help="compact tower output size")
    p.add_argument("--pairs-per-epoch", type=int, default=8192, help="identity mode")
    p.add_argument(
        "--val-pairs", type=int, default=2000, help="identity mode: validation pairs (fixed draw)"
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="identity mode: share of people held out for validation",
    )
    p.add_argument("--no-augment", action="store_true", help="identity mode: no augmentation")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after the epoch in which this much training time was spent",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (pairs, split, weights)")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="aligned-crop cache (default: <data_dir>/cache/crops)",
    )
    p.add_argument("--name", default=None, help="model name for the manifest")
    p.add_argument(
        "--eager",
        action="store_true",
        help="run Keras eagerly: skips graph tracing (about a minute for the compact tower), "
        "slower per step; for tiny runs and debugging",
    )
    p.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Train and print where the model directory is and its validation numbers."""
    from facegate.model.tf_runtime import require_tensorflow

    require_tensorflow("facegate train")
    from facegate.training.train import TrainOptions, train

    arch = args.arch or ("seed" if args.mode == "seed" else "compact")
    options = TrainOptions(
        mode=args.mode,
        data=args.data,
        out=args.out,
        arch=arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        resume=args.resume,
        exclude_pairs=tuple(args.exclude_pairs),
        patience=args.patience,
        val_fraction=args.val_fraction,
        pairs_per_epoch=args.pairs_per_epoch,
        val_pairs=args.val_pairs,
        augment=not args.no_augment,
        input_size=args.input_size,
        embedding_dim=args.embedding_dim,
        seed=args.seed,
        cache_dir=args.cache or config.storage.data_dir / "cache" / "crops",
        name=args.name,
        time_budget_s=args.max_minutes * 60.0 if args.max_minutes else None,
        run_eagerly=args.eager,
    )
    result = train(options, config.face)
    val = result.validation
    print(f"model directory: {result.model_dir}")
    print(f"training curve:  {result.curve}")
    print(f"epochs run:      {result.epochs_run}")
    if "accuracy" in val:
        print(
            f"validation:      accuracy {val['accuracy']:.4f} at threshold {val['threshold']:.4f}, "
            f"AUC {val['auc']:.4f}, EER {val['eer']:.4f} ({val['pairs']} pairs)"
        )
    return 0
