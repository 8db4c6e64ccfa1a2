"""Light YOLO-Basin (seed 002): a one-class, anchor-free, depthwise-separable YOLO for
subsidence basins in cos/sin phase tiles.

Backbone: CSPDarknet with depthwise-separable 3×3 convolutions (Focus stem, CSP stages, SPP with
5/9/13 max-pools), scaled by (depth, width). Neck: PANet (top-down with bilinear upsampling,
then bottom-up) giving strides 8/16/32. Head, per level: a regression branch (centre offset and
log width/height from the grid point, xy = (grid + t_xy)·stride, wh = exp(t_wh)·stride) and a
separate objectness branch; no class branch, there is one class. Training assigns positives by
the paper's fast OTA (models.assignment) and minimises focal objectness + 5·DIoU
(models.losses). Input sides must be multiples of 32.
"""
import math
from typing import Dict, List

import torch
from torch import nn
from torchvision.ops import nms

from ..core.errors import MineSARError
from .assignment import assign
from .detectors import INPUT_BANDS, DetectorMixin
from .losses import BOX_LOSS_WEIGHT, detection_losses


class TileShapeError(MineSARError, ValueError):
    """A tile the network cannot take: a user error (MineSARError) and a ValueError to Python."""


SCALES = {"s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0)}
STRIDES = (8, 16, 32)
OBJECTNESS_PRIOR = 0.01  # the objectness bias starts at this probability: focal loss stays small
PRE_NMS_TOP = 1000
MAX_LOG_SIZE = 10.0      # exp(t_wh) is capped so an untrained head cannot overflow to inf boxes


class ConvBnAct(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups,
                              bias=False)
        # YOLOX's 0.03 momentum let eval-mode statistics lag far behind a fast-moving net in
        # short fine-tunes (overfit test: train-mode scores 0.9, eval-mode 0.01); 0.1 keeps up.
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SeparableConv(nn.Module):
    """Depthwise k×k then pointwise 1×1: about 1/N + 1/k² of a full convolution's work."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.depthwise = ConvBnAct(in_channels, in_channels, kernel, stride, groups=in_channels)
        self.pointwise = ConvBnAct(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class Bottleneck(nn.Module):
    def __init__(self, channels: int, shortcut: bool):
        super().__init__()
        self.reduce = ConvBnAct(channels, channels, 1)
        self.spatial = SeparableConv(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x):
        y = self.spatial(self.reduce(x))
        return x + y if self.shortcut else y


class CSPLayer(nn.Module):
    """Half the channels through n bottlenecks, half bypassing them, then merged."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, shortcut: bool = True):
        super().__init__()
        hidden = out_channels // 2
        self.main = ConvBnAct(in_channels, hidden, 1)
        self.bypass = ConvBnAct(in_channels, hidden, 1)
        self.blocks = nn.Sequential(*(Bottleneck(hidden, shortcut) for _ in range(depth)))
        self.merge = ConvBnAct(2 * hidden, out_channels, 1)

    def forward(self, x):
        return self.merge(torch.cat([self.blocks(self.main(x)), self.bypass(x)], dim=1))


class SPP(nn.Module):
    """Spatial pyramid pooling: stride-1 max-pools of 5, 9 and 13 widen the receptive field of
    the stride-32 features to whole basins at no parameter cost."""

    def __init__(self, in_channels: int, out_channels: int, kernels=(5, 9, 13)):
        super().__init__()
        hidden = in_channels // 2
        self.reduce = ConvBnAct(in_channels, hidden, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernels)
        self.merge = ConvBnAct(hidden * (len(kernels) + 1), out_channels, 1)

    def forward(self, x):
        x = self.reduce(x)
        return self.merge(torch.cat([x] + [pool(x) for pool in self.pools], dim=1))


class Focus(nn.Module):
    """Space-to-depth (2×2 pixels to channels) then a 3×3 convolution: the stem halves the
    resolution without losing a pixel of the phase."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvBnAct(4 * in_channels, out_channels, 3)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                                    x[..., 1::2, 1::2]], dim=1))


class CSPDarknet(nn.Module):
    def __init__(self, in_channels: int, depth: float, width: float):
        super().__init__()
        base = int(64 * width)
        blocks = max(round(3 * depth), 1)
        self.stem = Focus(in_channels, base)
        self.dark2 = nn.Sequential(SeparableConv(base, 2 * base, 3, 2), CSPLayer(2 * base, 2 * base, blocks))
        self.dark3 = nn.Sequential(SeparableConv(2 * base, 4 * base, 3, 2),
                                   CSPLayer(4 * base, 4 * base, 3 * blocks))
        self.dark4 = nn.Sequential(SeparableConv(4 * base, 8 * base, 3, 2),
                                   CSPLayer(8 * base, 8 * base, 3 * blocks))
        self.dark5 = nn.Sequential(SeparableConv(8 * base, 16 * base, 3, 2), SPP(16 * base, 16 * base),
                                   CSPLayer(16 * base, 16 * base, blocks, shortcut=False))
        self.channels = (4 * base, 8 * base, 16 * base)

    def forward(self, x):
        c3 = self.dark3(self.dark2(self.stem(x)))
        c4 = self.dark4(c3)
        return c3, c4, self.dark5(c4)


class PANet(nn.Module):
    """Top-down (semantics to fine levels) then bottom-up (localisation to coarse levels)."""

    def __init__(self, channels, depth: float):
        super().__init__()
        c3, c4, c5 = channels
        blocks = max(round(3 * depth), 1)
        self.lateral5 = ConvBnAct(c5, c4, 1)
        self.top_down4 = CSPLayer(2 * c4, c4, blocks, shortcut=False)
        self.lateral4 = ConvBnAct(c4, c3, 1)
        self.top_down3 = CSPLayer(2 * c3, c3, blocks, shortcut=False)
        self.down3 = SeparableConv(c3, c3, 3, 2)
        self.bottom_up4 = CSPLayer(2 * c3, c4, blocks, shortcut=False)
        self.down4 = SeparableConv(c4, c4, 3, 2)
        self.bottom_up5 = CSPLayer(2 * c4, c5, blocks, shortcut=False)

    @staticmethod
    def _upsample(x, like):
        return nn.functional.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, features):
        c3, c4, c5 = features
        l5 = self.lateral5(c5)
        t4 = self.top_down4(torch.cat([self._upsample(l5, c4), c4], dim=1))
        l4 = self.lateral4(t4)
        p3 = self.top_down3(torch.cat([self._upsample(l4, c3), c3], dim=1))
        p4 = self.bottom_up4(torch.cat([self.down3(p3), l4], dim=1))
        p5 = self.bottom_up5(torch.cat([self.down4(p4), l5], dim=1))
        return p3, p4, p5


class DecoupledHead(nn.Module):
    """Per level: [N, 5, h, w] = regression (t_x, t_y, t_w, t_h) and objectness logit, each from
    its own branch, since box regression and confidence compete for features in one branch."""

    def __init__(self, channels, width: float):
        super().__init__()
        hidden = int(256 * width)
        self.stems = nn.ModuleList(ConvBnAct(c, hidden, 1) for c in channels)
        self.reg_branches = nn.ModuleList(
            nn.Sequential(SeparableConv(hidden, hidden), SeparableConv(hidden, hidden)) for _ in channels)
        self.obj_branches = nn.ModuleList(
            nn.Sequential(SeparableConv(hidden, hidden), SeparableConv(hidden, hidden)) for _ in channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in channels)
        for layer in self.obj_preds:
            nn.init.constant_(layer.bias, -math.log((1 - OBJECTNESS_PRIOR) / OBJECTNESS_PRIOR))

    def forward(self, features):
        outputs = []
        for level, x in enumerate(features):
            x = self.stems[level](x)
            outputs.append(torch.cat([self.reg_preds[level](self.reg_branches[level](x)),
                                      self.obj_preds[level](self.obj_branches[level](x))], dim=1))
        return outputs


class LightYoloBasin(nn.Module, DetectorMixin):
    has_masks = False

    def __init__(self, scale: str = "s", in_channels: int = len(INPUT_BANDS), top_z: int = 10,
                 k_lambda: float = 0.1, k_source: str = "cost", cost_reg_weight: float = 3.0,
                 centre_radius: float = 2.5, box_loss_weight: float = BOX_LOSS_WEIGHT,
                 nms_iou: float = 0.5, score_floor: float = 0.001, max_detections: int = 100):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
        if k_source not in ("cost", "iou"):
            raise ValueError(f"k_source must be 'cost' or 'iou', not {k_source!r}")
        self.architecture = "yolobasin"
        self._config = dict(scale=scale, in_channels=int(in_channels), top_z=int(top_z),
                            k_lambda=float(k_lambda), k_source=k_source,
                            cost_reg_weight=float(cost_reg_weight), centre_radius=float(centre_radius),
                            box_loss_weight=float(box_loss_weight), nms_iou=float(nms_iou),
                            score_floor=float(score_floor), max_detections=int(max_detections))
        depth, width = SCALES[scale]
        self.backbone = CSPDarknet(in_channels, depth, width)
        self.neck = PANet(self.backbone.channels, depth)
        self.head = DecoupledHead(self.backbone.channels, width)

    def config(self) -> dict:
        return dict(self._config)

    def set_nms_iou(self, iou: float) -> None:
        self._config["nms_iou"] = float(iou)

    def forward(self, images: torch.Tensor) -> List[torch.Tensor]:
        """Raw head outputs, one [N, 5, H/s, W/s] per stride s in STRIDES."""
        height, width = images.shape[-2:]
        if height % 32 or width % 32:
            raise TileShapeError(f"Light YOLO-Basin needs tiles whose sides are multiples of 32, got {height}×{width}: "
                                 "use a dataset or TILE_SIZE of such tiles (256, 416, 512).")
        if images.device.type == "cpu":
            # oneDNN runs the depthwise convolutions about 1.5× faster on NHWC tensors (bench/
            # yolobasin_speed.py: 4.7 -> 7.3 Mpx/s on 2 cores); CUDA keeps the caller's layout.
            images = images.contiguous(memory_format=torch.channels_last)
        return self.head(self.neck(self.backbone(images)))

    @staticmethod
    def decode(outputs: List[torch.Tensor]):
        """(boxes [N, P, 4] xyxy pixels, objectness logits [N, P], grid points [P, 2] pixels,
        strides [P]) with P the cells of all levels, finest first."""
        boxes, logits, points, strides = [], [], [], []
        for output, stride in zip(outputs, STRIDES):
            n, _, h, w = output.shape
            # float32 even under autocast: exp(t_wh)·stride overflows float16 beyond 65504 px.
            output = output.float().flatten(2).transpose(1, 2)  # [N, h·w, 5]
            ys, xs = torch.meshgrid(torch.arange(h, device=output.device, dtype=output.dtype),
                                    torch.arange(w, device=output.device, dtype=output.dtype), indexing="ij")
            # Cell centres: an offset of 0 puts the box centre in the middle of its cell.
            grid = torch.stack([xs, ys], dim=-1).reshape(-1, 2) + 0.5
            centre = (grid[None] + output[..., :2]) * stride
            size = torch.exp(output[..., 2:4].clamp(max=MAX_LOG_SIZE)) * stride
            boxes.append(torch.cat([centre - size / 2, centre + size / 2], dim=-1))
            logits.append(output[..., 4])
            points.append(grid * stride)
            strides.append(torch.full((h * w,), float(stride), device=output.device, dtype=output.dtype))
        return torch.cat(boxes, 1), torch.cat(logits, 1), torch.cat(points), torch.cat(strides)

    def losses(self, images: torch.Tensor, targets: List[Dict]) -> Dict[str, torch.Tensor]:
        boxes, logits, points, strides = self.decode(self(images))
        config = self._config
        foreground, pred_positive, truth_positive = [], [], []
        for index, target in enumerate(targets):
            truth = target["boxes"].to(device=boxes.device, dtype=torch.float32).reshape(-1, 4)
            truth = truth[(truth[:, 2] > truth[:, 0]) & (truth[:, 3] > truth[:, 1])]
            assignment = assign(boxes[index].detach(), logits[index].detach(), points, strides, truth,
                                top_z=config["top_z"], k_lambda=config["k_lambda"],
                                k_source=config["k_source"], reg_weight=config["cost_reg_weight"],
                                centre_radius=config["centre_radius"])
            foreground.append(assignment.foreground)
            pred_positive.append(boxes[index][assignment.foreground])
            truth_positive.append(truth[assignment.matched_truth[assignment.foreground]])
        return detection_losses(logits.reshape(-1), torch.cat(foreground), torch.cat(pred_positive),
                                torch.cat(truth_positive), box_weight=config["box_loss_weight"])

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> List[Dict[str, torch.Tensor]]:
        boxes, logits, _, _ = self.decode(self(images))
        height, width = images.shape[-2:]
        scores = torch.sigmoid(logits.float())
        boxes = boxes.float()
        boxes[..., 0::2] = boxes[..., 0::2].clamp(0, width)
        boxes[..., 1::2] = boxes[..., 1::2].clamp(0, height)
        results = []
        for image_boxes, image_scores in zip(boxes, scores):
            keep = (image_scores >= self._config["score_floor"]) & \
                   (image_boxes[:, 2] > image_boxes[:, 0]) & (image_boxes[:, 3] > image_boxes[:, 1])
            image_boxes, image_scores = image_boxes[keep], image_scores[keep]
            # NMS cost grows with the square of the boxes; the best thousand hold every detection.
            best = image_scores.topk(min(PRE_NMS_TOP, image_scores.numel())).indices
            image_boxes, image_scores = image_boxes[best], image_scores[best]
            kept = nms(image_boxes, image_scores, self._config["nms_iou"])[:self._config["max_detections"]]
            results.append({"boxes": image_boxes[kept], "scores": image_scores[kept]})
        return results
