#!/usr/bin/env python3
"""Chooses a checkpoint's decision threshold on a dataset split and stores it in the checkpoint
(models/calibration.py: the best basin-level F1, networks seen as detectsubsidence and
segmentsubsidence see them by default: detectors mirrored, segmenters in all eight views, mirrored
and turned). Training does this by itself; this is for checkpoints trained before it did, or to
calibrate on other labelled data.

    .venv/bin/python scripts/calibrate_threshold.py CHECKPOINT DATASET_FOLDER [--split val] [--threads 1]
        [--nms 0.3 0.4 0.5]

``--nms`` (detectors): the threshold sweep is run at each box NMS IoU and the best F1 wins; the IoU
is stored in the checkpoint's config (models/calibration.py, ``sweep_nms``).

The weights are written back unchanged, in the precision they were stored in (fp16 stays fp16).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))

from minesar.core.progress import Progress  # noqa: E402
from minesar.models.calibration import METADATA_KEY, calibrated_metadata  # noqa: E402
from minesar.models.checkpoint import load_model, read_checkpoint, save_checkpoint  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("dataset")
    parser.add_argument("--split", default="val")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nms", type=float, nargs="+", default=None,
                        help="detectors: box NMS IoUs to choose from along with the threshold")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    half = any(t.dtype == torch.float16 for t in read_checkpoint(args.checkpoint)["state_dict"].values())
    model, metadata = load_model(args.checkpoint, "cpu")
    entries = calibrated_metadata(model, args.dataset, "cpu", args.batch, Progress(info=print), split=args.split,
                                  nms_candidates=args.nms)
    if entries is None:
        sys.exit(f"{args.dataset}: no '{args.split}' split to calibrate on.")
    key = METADATA_KEY[metadata.get("task", "detection")]
    if key not in entries:  # nothing found at any threshold: an older choice is stale
        metadata.pop(key, None)
    save_checkpoint(args.checkpoint, model, {**metadata, **entries}, half=half)
    calibration = entries["threshold_calibration"]
    for row in calibration["sweep"]:
        print(json.dumps(row))
    for row in calibration.get("nms_sweep", []):
        print(json.dumps(row))
    nms = f", box NMS IoU {calibration['nms_iou']}" if "nms_iou" in calibration else ""
    print(f"threshold {calibration['threshold']}{nms} (P {calibration['precision']}, R {calibration['recall']}, "
          f"F1 {calibration['F1']}) stored in {args.checkpoint}")


if __name__ == "__main__":
    main()
