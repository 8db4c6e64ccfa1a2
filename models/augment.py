"""Test-time augmentation: each tile is seen as it is and mirrored left–right, and the two answers
are fused: box by box for detectors, pixel by pixel (the mean probability) for segmenters.

A mirrored interferogram is still an interferogram (the fringes of a basin mirrored), so the
network must answer the same; where it does not, it was guessing. Fusion (weighted box fusion,
at most one box of each view per basin): the box is the score-weighted mean of the views' boxes,
the score their sum divided by the number of views, so a basin only one view sees keeps half its
score and usually falls under the threshold. On the held-out set (bench/detection_accuracy.py
--mirror) this raised the fourth-run Light YOLO-Basin's basin-level precision from 0.912 to 0.939
and F1 from 0.872 to 0.887, at twice the inference time; the shipped fifth run is precise already
on tiles (0.987), and on whole scenes mirroring still cuts its false alarms from 11 to 7.
A segmenter's probability is the mean of the two views: a region only one view believes in falls
to half its probability. For the fourth-run ECA-UNet (held-out, at its threshold) this raised the
basin-level precision from 0.852 to 0.891 and F1 from 0.804 to 0.816.

A segmenter can also be seen turned by each quarter turn (SegmenterViews, segmentsubsidence's
TURNS): with the mirror, all eight symmetries of the square. The networks are trained on randomly
flipped and turned tiles, so each view asks the same question; a false region that only one or two
views believe in falls to a quarter of its probability or less, and basin cores that one view runs
together another keeps apart. Figures: README, "Default segmentation weights".
"""
from typing import Dict, List

import torch
from torchvision.ops import box_iou

FUSION_IOU = 0.55


def _unmirror(prediction: Dict[str, torch.Tensor], width: int) -> Dict[str, torch.Tensor]:
    boxes = prediction["boxes"].clone()
    boxes[:, [0, 2]] = width - prediction["boxes"][:, [2, 0]]
    restored = {"boxes": boxes, "scores": prediction["scores"]}
    if "masks" in prediction:
        restored["masks"] = prediction["masks"].flip(-1)
    return restored


def fuse(views: List[Dict[str, torch.Tensor]], iou_threshold: float = FUSION_IOU) -> Dict[str, torch.Tensor]:
    """One prediction from several views of the same tile (boxes already in the tile's frame)."""
    boxes = torch.cat([v["boxes"].float() for v in views])
    scores = torch.cat([v["scores"].float() for v in views])
    view_of = torch.cat([torch.full((len(v["scores"]),), k, dtype=torch.long) for k, v in enumerate(views)])
    with_masks = all("masks" in v for v in views)
    masks = torch.cat([v["masks"].float() for v in views]) if with_masks else None
    fused_boxes, fused_scores, fused_masks = [], [], []
    used = torch.zeros(len(scores), dtype=torch.bool)
    overlap = box_iou(boxes, boxes) if len(boxes) else boxes.new_zeros((0, 0))
    for seed in scores.argsort(descending=True).tolist():
        if used[seed]:
            continue
        members = [seed]
        for view in range(len(views)):
            if view == int(view_of[seed]):
                continue
            candidates = (~used) & (view_of == view) & (overlap[seed] >= iou_threshold)
            if candidates.any():
                members.append(int(torch.where(candidates, overlap[seed], overlap.new_tensor(-1.0)).argmax()))
        members = torch.tensor(members)
        used[members] = True
        weights = scores[members]
        fused_boxes.append((boxes[members] * weights[:, None]).sum(0) / weights.sum())
        fused_scores.append(weights.sum() / len(views))
        if with_masks:
            # Masks come as [N, H, W] (Mask R-CNN's predict) or [N, 1, H, W]: weight along N only.
            member_weights = weights.reshape((-1,) + (1,) * (masks.dim() - 1))
            fused_masks.append((masks[members] * member_weights).sum(0) / weights.sum())
    fused = {"boxes": torch.stack(fused_boxes) if fused_boxes else boxes[:0],
             "scores": torch.stack(fused_scores) if fused_scores else scores[:0]}
    if with_masks:
        fused["masks"] = torch.stack(fused_masks) if fused_masks else masks[:0]
    order = fused["scores"].argsort(descending=True)
    return {key: value[order] for key, value in fused.items()}


def mirrored_predict(predict, images: torch.Tensor) -> List[Dict[str, torch.Tensor]]:
    """``predict`` (a detector's ``predict``) of ``images`` and of their mirror image, fused tile by tile."""
    width = images.shape[-1]
    direct = predict(images)
    mirrored = predict(images.flip(-1))
    return [fuse([a, _unmirror(b, width)]) for a, b in zip(direct, mirrored)]


class MirroredView:
    """A network seen as it is and mirrored wherever a loop calls ``to``, ``eval`` and ``predict``
    (evaluation, threshold calibration, whole-raster runs), as the algorithms' MIRROR sees it."""

    def __init__(self, model):
        self.model = model
        self.task = getattr(model, "task", "detection")
        self.input_kind = getattr(model, "input_kind", "phase")
        self.architecture = getattr(model, "architecture", "")

    def to(self, device):
        self.model.to(device)
        return self

    def eval(self):
        self.model.eval()
        return self


class MirroredDetector(MirroredView):
    """A detector whose boxes are fused from both views (``mirrored_predict``)."""

    def predict(self, images):
        return mirrored_predict(self.model.predict, images)


class SegmenterViews(MirroredView):
    """A segmenter whose maps are the mean over several views of each tile: as it is; with
    ``mirror`` also mirrored left–right; with ``turns`` also turned by one, two and three quarter
    turns (with both, all eight symmetries of the square). Each view's map is turned back before
    the mean, so it stays in the tile's frame."""

    def __init__(self, model, mirror: bool = True, turns: bool = False):
        super().__init__(model)
        self.views = [(flip, quarter) for flip in ((False, True) if mirror else (False,))
                      for quarter in (range(4) if turns else (0,))]

    @property
    def cores(self) -> bool:
        return bool(getattr(self.model, "cores", False))

    def _mean(self, predict, images):
        total = None
        for flip, quarter in self.views:
            view = images.flip(-1) if flip else images
            view = torch.rot90(view, quarter, (-2, -1)) if quarter else view
            answer = predict(view)
            answer = torch.rot90(answer, -quarter, (-2, -1)) if quarter else answer
            answer = answer.flip(-1) if flip else answer
            total = answer if total is None else total + answer
        return total / len(self.views)

    def predict(self, images):
        return self._mean(self.model.predict, images)

    def predict_maps(self, images):
        return self._mean(self.model.predict_maps, images)


class MirroredSegmenter(SegmenterViews):
    """A segmenter whose probability map is the mean of the tile's and its mirror image's."""

    def __init__(self, model):
        super().__init__(model, mirror=True, turns=False)


def segmenter_views(model, mirror: bool, turns: bool):
    """``model`` itself when it is seen once, else its SegmenterViews."""
    return SegmenterViews(model, mirror, turns) if (mirror or turns) else model


def mirrored(model) -> MirroredView:
    """``model`` seen as it is and mirrored, by its task (MirroredDetector or MirroredSegmenter)."""
    if getattr(model, "task", "detection") == "segmentation":
        return MirroredSegmenter(model)
    return MirroredDetector(model)
