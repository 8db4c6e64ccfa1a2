"""Mask R-CNN (seed 001) behind the detector contract: 2-channel cos/sin phase, one class.

torchvision supplies RPN, RoIAlign and the box and mask heads; what changes here is what an
interferogram is not (an RGB photo): two input channels centred on 0, no ImageNet weights (nothing
is ever downloaded: ``weights=None`` everywhere), tiles kept at their own size, and anchors for
basins of about 8 to 200 pixels.

Normalisation is GroupNorm, not BatchNorm: without pretrained statistics BatchNorm must learn
them from batches of a few tiles, whose deepest feature maps hold a handful of values per channel;
the network then relies on per-batch statistics that its running averages do not reproduce, and
a model that fits its training tiles in train mode misses them in eval mode. GroupNorm is the same
in both (Wu & He 2018; He et al. 2019 train detectors from scratch with it).
"""
import math
from typing import Dict, List

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large, resnet50
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from .detectors import CLASSES, INPUT_BANDS, DetectorMixin

BACKBONES = ("resnet50", "mobilenet_v3")
# cos and sin of a uniformly distributed phase have mean 0 and standard deviation 1/√2.
IMAGE_MEAN = (0.0, 0.0)
IMAGE_STD = (0.7071, 0.7071)


class _KeepSizeTransform(GeneralizedRCNNTransform):
    """Normalises and pads but never resizes: a basin's size in pixels is what the anchors and the
    training saw, and resizing would blur the fringes that make it visible."""

    def resize(self, image, target=None):
        return image, target


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups dividing the channels (MobileNet's 40, 72 or 120 take 8)."""
    return nn.GroupNorm(math.gcd(32, channels), channels)


def _two_channel_stem(model: nn.Module) -> None:
    """Replace the first 3-channel convolution by a 2-channel one of the same shape."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                setattr(parent, name, nn.Conv2d(
                    len(INPUT_BANDS), child.out_channels, child.kernel_size, child.stride, child.padding,
                    child.dilation, child.groups, child.bias is not None))
                return
    raise RuntimeError("no 3-channel input convolution found")


def _parts(name: str) -> dict:
    """FPN backbone, anchor sizes per level, RoIAlign feature names and head widths of a backbone."""
    if name == "resnet50":
        body = resnet50(weights=None, norm_layer=group_norm)
        _two_channel_stem(body)
        # Levels of stride 4, 8, 16, 32 and the pooled 64.
        return {"backbone": _resnet_fpn_extractor(body, trainable_layers=5),
                "sizes": ((8, 12), (16, 24), (32, 48), (64, 96), (128, 192)),
                "features": ["0", "1", "2", "3"], "mask_layers": 4, "representation": 1024, "rois": 256}
    if name == "mobilenet_v3":
        features = mobilenet_v3_large(weights=None, norm_layer=group_norm).features
        _two_channel_stem(features)
        # Outputs of stride 8, 16 and 32 (torchvision's mobilenet FPN starts at 16, too coarse for
        # the smallest basins) and the pooled 64; 128 FPN channels and a 2-layer mask head keep it
        # quick enough to train on a CPU.
        stages = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)] + [len(features) - 1]
        chosen = stages[-3:]
        return_layers = {str(index): str(level) for level, index in enumerate(chosen)}
        in_channels = [features[index].out_channels for index in chosen]
        backbone = BackboneWithFPN(features, return_layers, in_channels, 128, extra_blocks=LastLevelMaxPool())
        return {"backbone": backbone, "sizes": ((8, 16), (24, 40), (64, 96), (128, 192)),
                "features": ["0", "1", "2"], "mask_layers": 2, "representation": 512, "rois": 128}
    raise ValueError(f"Unknown Mask R-CNN backbone '{name}': use one of {', '.join(BACKBONES)}.")


class MaskRCNNDetector(nn.Module, DetectorMixin):
    has_masks = True

    def __init__(self, backbone: str = "resnet50", tile_size: int = 256, detections_per_image: int = 100,
                 score_floor: float = 0.01, nms_iou: float = 0.5):
        super().__init__()
        self.backbone_name = backbone
        self.tile_size = int(tile_size)
        self.detections_per_image = int(detections_per_image)
        self.score_floor = float(score_floor)
        parts = _parts(backbone)
        width = parts["backbone"].out_channels
        sizes = parts["sizes"]
        self.net = MaskRCNN(
            parts["backbone"],
            rpn_anchor_generator=AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes)),
            # Tiles hold a handful of basins: far fewer proposals than photos of crowded scenes.
            rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
            rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=300,
            box_batch_size_per_image=parts["rois"],
            box_roi_pool=MultiScaleRoIAlign(parts["features"], output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(width * 7 * 7, parts["representation"]),
            box_predictor=FastRCNNPredictor(parts["representation"], len(CLASSES)),
            mask_roi_pool=MultiScaleRoIAlign(parts["features"], output_size=14, sampling_ratio=2),
            # Normalised mask head (as torchvision's v2 model): without pretrained weights the
            # unnormalised one starts with logits in the tens and a mask loss to match.
            mask_head=MaskRCNNHeads(width, (width,) * parts["mask_layers"], 1, norm_layer=group_norm),
            mask_predictor=MaskRCNNPredictor(width, width, len(CLASSES)),
            # A low floor rather than torchvision's 0.05: AP needs the low-score tail; callers threshold.
            box_score_thresh=self.score_floor,
            box_detections_per_img=self.detections_per_image,
            box_nms_thresh=float(nms_iou),
        )
        self.net.transform = _KeepSizeTransform(self.tile_size, self.tile_size, IMAGE_MEAN, IMAGE_STD)

    def config(self) -> dict:
        return {"backbone": self.backbone_name, "tile_size": self.tile_size,
                "detections_per_image": self.detections_per_image, "score_floor": self.score_floor,
                "nms_iou": self.net.roi_heads.nms_thresh}

    def set_nms_iou(self, iou: float) -> None:
        self.net.roi_heads.nms_thresh = float(iou)

    def forward(self, images, targets=None):
        return self.net(list(images), targets)

    def losses(self, images, targets: List[Dict]) -> Dict[str, torch.Tensor]:
        converted = []
        for target in targets:
            boxes = target["boxes"].to(images.device, torch.float32).reshape(-1, 4)
            converted.append({
                "boxes": boxes,
                "labels": torch.ones(boxes.shape[0], dtype=torch.int64, device=images.device),
                "masks": target["masks"].to(images.device, torch.uint8),
            })
        return self.net(list(images), converted)

    @torch.no_grad()
    def predict(self, images) -> List[Dict]:
        outputs = self.net(list(images))
        return [{"boxes": out["boxes"].float(), "scores": out["scores"].float(),
                 "masks": out["masks"][:, 0].float()} for out in outputs]
