"""Which predictions learn which subsidence basin: the fast OTA of Light YOLO-Basin (seed 002).

OTA (Ge et al. 2021) sees truths as suppliers of k_i units and predictions as demanders of one
unit, at cost c_ij = L_obj + α·L_reg (seed 002 eq. 5, α = 3). Seed 002 drops Sinkhorn for its
fast approximation: each truth i gets k_i from its top-Z predictions by IoU (eq. 6, Z = 10,
λ = 0.1) and takes its k_i lowest-cost predictions; a prediction claimed twice goes to the truth
it costs least.

Choices the paper leaves open, made here:
- L_obj is binary cross-entropy of the objectness logit against 1; L_reg is the DIoU loss
  1 − IoU + ρ²/c², the paper's box loss, so the cost ranks predictions the way training scores
  them. Unlike −log IoU it is bounded (< 2), which keeps the cost-based k below about Z·λ·(L_obj
  + 6) even for the hopeless boxes of an untrained net.
- Eq. 6 reads k_i = Σ_topZ-IoU λ·c_ij: λ times the costs of the Z best-overlapping predictions
  (``k_source="cost"``, the default). The reading Σ λ·IoU (``"iou"``) gives k ≤ Z·λ = 1 for every
  truth when λ = 0.1; with λ = 1 it is YOLOX's SimOTA. Either way k ≥ 1 while a truth has a
  candidate, and k never exceeds its candidate count.
- Candidates: the paper does not say which predictions may serve a truth. OTA and YOLOX use a
  centre prior; here a prediction is a candidate when its grid point lies inside the truth box or
  within ``centre_radius`` strides of the truth's centre, and those meeting both tests are
  preferred by a large additive cost (left out of the costs that set k).
"""
from typing import NamedTuple

import torch
from torchvision.ops import box_iou, distance_box_iou_loss

# Added to the cost of candidates that are in the box or near its centre, not both, so they are
# chosen only after every candidate meeting both tests.
OUTSIDE_CORE_PENALTY = 1.0e5


class Assignment(NamedTuple):
    foreground: torch.Tensor     # [P] bool: the prediction is a positive sample
    matched_truth: torch.Tensor  # [P] long: index of its truth, -1 for background
    matched_iou: torch.Tensor    # [P] IoU with that truth, 0 for background
    dynamic_k: torch.Tensor      # [G] long: positives each truth asked for


def dynamic_k(ious: torch.Tensor, costs: torch.Tensor, candidates: torch.Tensor, top_z: int = 10,
              k_lambda: float = 0.1, k_source: str = "cost") -> torch.Tensor:
    """[G] positives per truth from [G, P] IoUs and costs, over candidate predictions only."""
    if k_source not in ("cost", "iou"):
        raise ValueError(f"k_source must be 'cost' or 'iou', not {k_source!r}")
    truths, predictions = ious.shape
    if truths == 0 or predictions == 0:
        return torch.zeros(truths, dtype=torch.long, device=ious.device)
    z = min(top_z, predictions)
    ranked_ious = torch.where(candidates, ious, torch.full_like(ious, -1.0))
    top_ious, top_index = ranked_ious.topk(z, dim=1)
    in_top = top_ious >= 0  # fewer than Z candidates: sum over those there are
    summed = ious.gather(1, top_index) if k_source == "iou" else costs.gather(1, top_index)
    k = torch.round(k_lambda * (summed * in_top).sum(dim=1)).long()
    candidate_count = candidates.sum(dim=1)
    return torch.minimum(k.clamp(min=1), candidate_count)


def match(costs: torch.Tensor, k: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """[P] long truth index per prediction (-1: background): truth i takes its k_i cheapest
    candidates; a prediction taken by several truths stays with the cheapest of them."""
    truths, predictions = costs.shape
    matched = torch.full((predictions,), -1, dtype=torch.long, device=costs.device)
    if truths == 0 or predictions == 0 or int(k.max()) == 0:
        return matched
    costs = torch.where(candidates, costs, torch.full_like(costs, float("inf")))
    _, cheapest = costs.topk(int(k.max()), dim=1, largest=False)
    ranks = torch.arange(cheapest.shape[1], device=costs.device)
    chosen = torch.zeros_like(candidates)
    rows = torch.arange(truths, device=costs.device)[:, None].expand_as(cheapest)
    chosen[rows, cheapest] = ranks[None, :] < k[:, None]
    chosen &= candidates
    claimed = chosen.any(dim=0)
    cheapest_truth = torch.where(chosen, costs, torch.full_like(costs, float("inf"))).argmin(dim=0)
    matched[claimed] = cheapest_truth[claimed]
    return matched


def candidate_masks(points: torch.Tensor, strides: torch.Tensor, truth_boxes: torch.Tensor,
                    centre_radius: float = 2.5):
    """([G, P] candidates, [G, P] core) from grid points [P, 2] (pixels), strides [P] and truth
    boxes [G, 4]: in the box or near its centre, and in the box and near its centre."""
    x, y = points[None, :, 0], points[None, :, 1]
    x1, y1, x2, y2 = (truth_boxes[:, i, None] for i in range(4))
    in_box = (x > x1) & (x < x2) & (y > y1) & (y < y2)
    radius = centre_radius * strides[None, :]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    near_centre = ((x - cx).abs() < radius) & ((y - cy).abs() < radius)
    return in_box | near_centre, in_box & near_centre


@torch.no_grad()
def assign(pred_boxes: torch.Tensor, objectness_logits: torch.Tensor, points: torch.Tensor,
           strides: torch.Tensor, truth_boxes: torch.Tensor, top_z: int = 10, k_lambda: float = 0.1,
           k_source: str = "cost", reg_weight: float = 3.0, centre_radius: float = 2.5) -> Assignment:
    """Positive samples of one image.

    pred_boxes [P, 4] xyxy pixels, objectness_logits [P], points [P, 2] grid points in pixels,
    strides [P], truth_boxes [G, 4] xyxy pixels.
    """
    device = pred_boxes.device
    predictions, truths = pred_boxes.shape[0], truth_boxes.shape[0]
    if truths == 0 or predictions == 0:
        return Assignment(torch.zeros(predictions, dtype=torch.bool, device=device),
                          torch.full((predictions,), -1, dtype=torch.long, device=device),
                          torch.zeros(predictions, dtype=pred_boxes.dtype, device=device),
                          torch.zeros(truths, dtype=torch.long, device=device))
    pred_boxes = pred_boxes.float()
    truth_boxes = truth_boxes.float().to(device)
    candidates, core = candidate_masks(points.float(), strides.float(), truth_boxes, centre_radius)
    ious = box_iou(truth_boxes, pred_boxes)
    pairs_pred = pred_boxes[None].expand(truths, -1, -1).reshape(-1, 4)
    pairs_truth = truth_boxes[:, None].expand(-1, predictions, -1).reshape(-1, 4)
    reg_cost = distance_box_iou_loss(pairs_pred, pairs_truth, reduction="none").view(truths, predictions)
    # BCE(logit, 1) = softplus(-logit), stable for any logit.
    obj_cost = torch.nn.functional.softplus(-objectness_logits.float())[None, :]
    costs = obj_cost + reg_weight * reg_cost
    k = dynamic_k(ious, costs, candidates, top_z, k_lambda, k_source)
    matched = match(costs + OUTSIDE_CORE_PENALTY * (~core), k, candidates)
    foreground = matched >= 0
    matched_iou = torch.zeros(predictions, dtype=ious.dtype, device=device)
    matched_iou[foreground] = ious[matched[foreground], foreground.nonzero().squeeze(1)]
    return Assignment(foreground, matched, matched_iou, k)
