"""Training losses: Light YOLO-Basin's (seed 002) focal objectness + 5 · DIoU box loss, and the
segmenters' BCE + soft Dice (``segmentation_losses``, at the end).

The two detection terms are divided by the number of positive samples in the batch, so the
balance between them does not depend on how many basins the tiles hold, and an image without
basins still teaches (every prediction a negative) without dividing by zero.
"""
from typing import Dict

import torch
from torchvision.ops import distance_box_iou_loss, sigmoid_focal_loss

BOX_LOSS_WEIGHT = 5.0
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


def objectness_loss(logits: torch.Tensor, foreground: torch.Tensor, alpha: float = FOCAL_ALPHA,
                    gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Summed focal loss of objectness logits [P] against the positive-sample mask [P]."""
    return sigmoid_focal_loss(logits.float(), foreground.to(torch.float32), alpha=alpha, gamma=gamma,
                              reduction="sum")


def box_loss(pred_boxes: torch.Tensor, truth_boxes: torch.Tensor) -> torch.Tensor:
    """Summed DIoU loss 1 − IoU + ρ²/c² of matched xyxy pairs [M, 4]."""
    if pred_boxes.shape[0] == 0:
        return pred_boxes.sum() * 0.0  # keeps the graph, so backward works on empty batches
    return distance_box_iou_loss(pred_boxes.float(), truth_boxes.float(), reduction="sum")


def detection_losses(objectness_logits: torch.Tensor, foreground: torch.Tensor,
                     pred_boxes: torch.Tensor, matched_truth_boxes: torch.Tensor,
                     box_weight: float = BOX_LOSS_WEIGHT, alpha: float = FOCAL_ALPHA,
                     gamma: float = FOCAL_GAMMA) -> Dict[str, torch.Tensor]:
    """Weighted loss terms (their sum is minimised).

    objectness_logits [P] and foreground [P] over all predictions of the batch; pred_boxes and
    matched_truth_boxes [M, 4] for the M positives.
    """
    positives = max(int(foreground.sum()), 1)
    return {
        "loss_objectness": objectness_loss(objectness_logits, foreground, alpha, gamma) / positives,
        "loss_box": box_weight * box_loss(pred_boxes, matched_truth_boxes) / positives,
    }


def segmentation_losses(logits: torch.Tensor, truth: torch.Tensor, smooth: float = 1.0) -> Dict[str, torch.Tensor]:
    """BCE-with-logits + soft Dice of positive-class logits [N, H, W] against a 0/1 map [N, H, W].

    Subsidence basins and mine patches cover a few per cent of a tile. BCE alone is dominated by
    the background and settles for predicting little of the positive class; Dice measures the
    overlap itself and does not care how much background there is, but its gradient is erratic
    while predictions are poor, and it is undefined on tiles without positives. Together: BCE for
    stable per-pixel gradients from the first step, Dice for the overlap the metrics score.
    Dice is taken over the whole batch, not per tile: a tile without subsidence (common) would
    otherwise punish every faint positive on it as hard as a missed basin.
    """
    logits = logits.float()
    truth = truth.to(logits.dtype)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth)
    probability = torch.sigmoid(logits)
    overlap = (probability * truth).sum()
    dice = 1.0 - (2.0 * overlap + smooth) / (probability.sum() + truth.sum() + smooth)
    return {"loss_bce": bce, "loss_dice": dice}
