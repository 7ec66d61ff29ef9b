"""``facegate evaluate``: verification accuracy of a model on LFW pairs or an identity tree."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
from pathlib import Path

from facegate.config import FacegateConfig
from facegate.errors import DataError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy, ROC AUC, EER, TAR@FAR and speed of a model on face pairs",
        description="Evaluate on an LFW protocol file (--lfw DIR --pairs FILE) or on every "
        "genuine pair of an identity-labelled tree plus 5x as many impostor pairs (--dataset).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--lfw", type=Path, metavar="DIR", help="LFW image tree <Name>/<images>")
    source.add_argument("--dataset", type=Path, metavar="DIR", help="<identity>/<images> tree")
    p.add_argument(
        "--pairs",
        type=Path,
        metavar="FILE",
        help="LFW protocol file (pairs.txt, pairsDevTrain.txt, pairsDevTest.txt)",
    )
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model directory (default: the configured or packaged model)",
    )
    p.add_argument(
        "--door-trials",
        type=int,
        default=0,
        metavar="N",
        help="with --lfw: also verify N probes against galleries of 3-5 images of the pairs "
        "file's people at the door's thresholds (door FAR / FRR)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--roc", type=Path, default=None, metavar="FILE.png", help="draw the ROC curve")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace, config: FacegateConfig) -> int:
    """Evaluate and print a table, or one JSON object with ``--json``."""
    if args.lfw is not None and args.pairs is None:
        raise DataError("--lfw needs --pairs FILE (an LFW protocol file)")
    if args.dataset is not None and args.pairs is not None:
        raise DataError("--pairs goes with --lfw, not with --dataset")
    if args.door_trials and args.lfw is None:
        raise DataError("--door-trials goes with --lfw")
    if args.door_trials < 0:
        raise DataError("--door-trials must be at least 0")
    from facegate.model.bundle import load_model_dir
    from facegate.model.tf_runtime import TENSORFLOW_EXTRA
    from facegate.training import evaluate

    if args.roc is not None and importlib.util.find_spec("matplotlib") is None:
        raise DataError(f"--roc needs matplotlib, not installed: pip install '{TENSORFLOW_EXTRA}'")
    if args.lfw is not None:
        pair_set = evaluate.lfw_pair_set(args.lfw, args.pairs)
    else:
        pair_set = evaluate.dataset_pair_set(args.dataset)
    model = load_model_dir(
        args.model or config.model.path, config.model.runtime, config.model.variant
    )
    result = evaluate.evaluate(pair_set, model, config.face)
    if args.door_trials:
        result.report["door_trials"] = evaluate.door_trials(
            args.lfw, args.pairs, model, config.face, args.door_trials
        )
    if args.roc is not None:
        from facegate.training.plots import roc_plot

        roc_plot(
            result.roc.far,
            result.roc.tar,
            args.roc,
            label=model.manifest.name,
            auc=result.report["auc"],
        )
    if args.json:
        print(json.dumps(result.report, sort_keys=True))
    else:
        print(evaluate.format_table(result.report))
    return 0
