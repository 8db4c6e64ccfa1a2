"""Segmentation networks behind the contract of models/segmenters.py: one logit map per image,
the probability of the positive class (subsidence for seed 000, mine patch for seed 003).

    UNet, ECAUNet      U-Net (4 poolings, transposed-convolution upsampling), ECA-UNet with an ECA
                       module after each of the four encoder stages that feed skip connections
    FCN                FCN-32s/16s/8s on a VGG-16-style encoder built here
    PSPNet             dilated ResNet (output stride 8) + pyramid pooling over 1, 2, 3, 6 bins
    DeepLabV3          torchvision's DeepLabV3 (ASPP: 1×1, three atrous 3×3, image pooling) on a
                       ResNet-50 (output stride 8) or a MobileNetV3-Large (stride 16)

Every input side is padded with zeros (no data in both input kinds) to a multiple of the
network's stride and the output cropped back, so any tile size works, odd ones included.

Normalisation is GroupNorm everywhere (torchvision's BatchNorm layers are swapped after building).
Nothing starts from pretrained weights, and CPU batches are 2–8 tiles: BatchNorm would learn
statistics of a few tiles that its running averages do not reproduce in eval mode (what the Mask
R-CNN here ran into), and the image-pooling branches of ASPP and PSPNet see one value per
channel and image, which BatchNorm refuses outright for a batch of one. GroupNorm is the same in
training and inference and at any batch size.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import MineSARError
from .detectors import INPUT_BANDS
from .eca import ECA
from .losses import segmentation_losses
from .maskrcnn import group_norm
from .segmenters import INPUT_KINDS, TASK, SegmenterMixin

GF2_BANDS = ("blue", "green", "red", "nir")  # core.io.optical.GF2_BANDS, without importing GDAL here


def default_bands(input_kind: str) -> tuple:
    if input_kind == "phase":
        return tuple(INPUT_BANDS)
    if input_kind == "optical":
        return GF2_BANDS
    raise ValueError(f"Unknown input kind '{input_kind}': use one of {', '.join(INPUT_KINDS)}.")


def conv_norm_relu(in_channels: int, out_channels: int, kernel: int = 3, dilation: int = 1) -> List[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                      bias=False), group_norm(out_channels), nn.ReLU(inplace=True)]


def replace_batch_norm(module: nn.Module) -> None:
    """Every BatchNorm2d inside ``module`` becomes a GroupNorm over the same channels."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, group_norm(child.num_features))
        else:
            replace_batch_norm(child)


def adapt_first_conv(module: nn.Module, channels: int) -> None:
    """The first 3-channel (RGB) convolution takes ``channels`` input channels instead."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                if channels != 3:
                    setattr(parent, name, nn.Conv2d(
                        channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                        child.dilation, child.groups, child.bias is not None))
                return
    raise RuntimeError("no 3-channel input convolution found")


def core_map(targets: Sequence[Dict], shape, device) -> torch.Tensor:
    """[N, H, W] float 0/1 maps of the instances' cores (``core.segmentation.basin_cores``)."""
    from ..core.segmentation.basin_cores import instance_cores

    maps = []
    for target in targets:
        masks = target.get("masks")
        masks = (masks.cpu().numpy() if isinstance(masks, torch.Tensor) else masks) if masks is not None else None
        cores = instance_cores(masks, tuple(shape))
        maps.append(torch.from_numpy(cores))
    return torch.stack(maps).to(device=device, dtype=torch.float32)


def target_map(targets: Sequence[Dict], shape, device) -> torch.Tensor:
    """[N, H, W] float 0/1 maps from contract targets: a semantic map (> 0) or the union of masks."""
    maps = []
    for target in targets:
        if target.get("semantic") is not None:
            truth = torch.as_tensor(target["semantic"], device=device) > 0
        elif target.get("masks") is not None and len(target["masks"]):
            truth = torch.as_tensor(target["masks"], device=device).amax(dim=0) > 0
        else:
            truth = torch.zeros(tuple(shape), dtype=torch.bool, device=device)
        if tuple(truth.shape) != tuple(shape):
            raise MineSARError(f"A target of {tuple(truth.shape)} pixels for an image of {tuple(shape)}.")
        maps.append(truth)
    return torch.stack(maps).float()


class Segmenter(nn.Module, SegmenterMixin):
    """Padding, losses and prediction shared by the networks; subclasses give ``padded_logits``
    ([N, C, H, W] with H and W multiples of ``stride`` -> [N, 1, H, W])."""

    task = TASK
    stride = 32
    cores = False  # (ECA-)U-Net can also map basin cores (``with_cores``)

    def __init__(self, input_kind: str = "phase", bands: Optional[Sequence[str]] = None):
        super().__init__()
        self.bands = tuple(bands) if bands else default_bands(input_kind)
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"Unknown input kind '{input_kind}': use one of {', '.join(INPUT_KINDS)}.")
        self.input_kind = input_kind
        if not self.bands:
            raise ValueError("A segmenter needs at least one input band.")
        if input_kind == "phase" and len(self.bands) != len(INPUT_BANDS):
            raise ValueError(f"Phase input has {len(INPUT_BANDS)} channels (cos, sin), not {len(self.bands)}.")

    @property
    def in_channels(self) -> int:
        return len(self.bands)

    def input_config(self) -> dict:
        return {"input_kind": self.input_kind, "bands": list(self.bands)}

    def check_input(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise MineSARError(
                f"{self.architecture or type(self).__name__} takes [N, {self.in_channels}, H, W] "
                f"({', '.join(self.bands)}), not a tensor of shape {list(images.shape)}.")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 1, H, W] logits of the positive class."""
        self.check_input(images)
        rows, cols = images.shape[-2:]
        pad_rows, pad_cols = -rows % self.stride, -cols % self.stride
        if pad_rows or pad_cols:
            images = F.pad(images, (0, pad_cols, 0, pad_rows))
        return self.padded_logits(images)[..., :rows, :cols]

    def padded_logits(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def losses(self, images: torch.Tensor, targets: List[Dict]) -> Dict[str, torch.Tensor]:
        logits = self(images)
        losses = segmentation_losses(logits[:, 0], target_map(targets, logits.shape[-2:], logits.device))
        if self.cores:
            core = segmentation_losses(logits[:, 1], core_map(targets, logits.shape[-2:], logits.device))
            losses.update({"loss_core_bce": core["loss_bce"], "loss_core_dice": core["loss_dice"]})
        return losses

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(images)[:, 0].float())

    @torch.no_grad()
    def predict_maps(self, images: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] probabilities: the positive class, then (``cores``) the basins' cores."""
        return torch.sigmoid(self(images).float())


# --- U-Net and ECA-UNet -----------------------------------------------------------------------

def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(*conv_norm_relu(in_channels, out_channels), *conv_norm_relu(out_channels, out_channels))


class UNet(Segmenter):
    """U-Net with widths w, 2w, 4w, 8w and a 16w bottleneck. ``base_width`` 32 (not the paper's
    64) keeps 7.8 M parameters, a 15.5 MB file in fp16."""

    stride = 16
    with_eca = False

    def __init__(self, base_width: int = 32, input_kind: str = "phase", bands: Optional[Sequence[str]] = None,
                 cores: bool = False):
        super().__init__(input_kind, bands)
        # A second output, each basin's core, parts basins that touch: one region of the first
        # map holding two cores is two basins (core.segmentation.basin_cores).
        self.cores = bool(cores)
        if base_width < 1:
            raise ValueError(f"U-Net base width {base_width}: use at least 1.")
        self.base_width = int(base_width)
        widths = [self.base_width * 2 ** level for level in range(5)]
        self.encoder = nn.ModuleList([double_conv(self.in_channels, widths[0])] +
                                     [double_conv(widths[i], widths[i + 1]) for i in range(4)])
        # Attention on the four stages that feed the decoder's skips, before their pooling: the
        # skips and the deeper path both get the recalibrated channels.
        self.attention = nn.ModuleList([ECA(w) if self.with_eca else nn.Identity() for w in widths[:4]])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(4))])
        self.decoder = nn.ModuleList([double_conv(2 * widths[i], widths[i]) for i in reversed(range(4))])
        self.head = nn.Conv2d(widths[0], 2 if self.cores else 1, 1)

    def config(self) -> dict:
        return {"base_width": self.base_width, **self.input_config(), **({"cores": True} if self.cores else {})}

    def padded_logits(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage, attention in zip(self.encoder[:4], self.attention):
            x = attention(stage(x))
            skips.append(x)
            x = self.pool(x)
        x = self.encoder[4](x)
        for up, decode, skip in zip(self.up, self.decoder, reversed(skips)):
            x = decode(torch.cat([skip, up(x)], dim=1))
        return self.head(x)


class ECAUNet(UNet):
    with_eca = True


# --- FCN-32s/16s/8s ---------------------------------------------------------------------------

VGG16_STAGES = (2, 2, 3, 3, 3)
FCN_VARIANTS = ("32s", "16s", "8s")


def bilinear_upsampler(channels: int = 1) -> nn.ConvTranspose2d:
    """A learnable 2× upsampling that starts as bilinear interpolation (as FCN's upscore layers)."""
    layer = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    ramp = 1.0 - torch.abs(torch.arange(4, dtype=torch.float32) - 1.5) / 2.0
    with torch.no_grad():
        layer.weight.zero_()
        for channel in range(channels):
            layer.weight[channel, channel] = ramp[:, None] * ramp[None, :]
    return layer


class FCN(Segmenter):
    """FCN (Long et al. 2015) on VGG-16: five stages of 2, 2, 3, 3, 3 3×3 convolutions (widths w, 2w,
    4w, 8w, 8w) each ending in a 2× max-pool, fc6 (7×7) and fc7 (1×1) as convolutions of
    ``fc_channels``, a 1×1 score. 32s upsamples the score 32×; 16s first adds pool4's score to its
    2× upsampling; 8s then adds pool3's likewise. With w = 64 and 4096 fc channels it is the paper's
    network (134 M parameters, 103 M of them in fc6). GroupNorm after every convolution: VGG-16
    from scratch without normalisation trains poorly (its authors initialised the deep
    configurations from shallower trained ones)."""

    stride = 32

    def __init__(self, variant: str = "8s", base_width: int = 64, fc_channels: int = 4096,
                 input_kind: str = "phase", bands: Optional[Sequence[str]] = None):
        super().__init__(input_kind, bands)
        if variant not in FCN_VARIANTS:
            raise ValueError(f"Unknown FCN variant '{variant}': use one of {', '.join(FCN_VARIANTS)}.")
        self.variant = variant
        self.base_width = int(base_width)
        self.fc_channels = int(fc_channels)
        widths = [self.base_width, 2 * self.base_width, 4 * self.base_width, 8 * self.base_width, 8 * self.base_width]
        stages, channels = [], self.in_channels
        for count, width in zip(VGG16_STAGES, widths):
            layers = []
            for _ in range(count):
                layers += conv_norm_relu(channels, width)
                channels = width
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Sequential(
            nn.Conv2d(widths[4], self.fc_channels, 7, padding=3, bias=False), group_norm(self.fc_channels),
            nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Conv2d(self.fc_channels, self.fc_channels, 1, bias=False), group_norm(self.fc_channels),
            nn.ReLU(inplace=True), nn.Dropout(0.5))
        self.score = nn.Conv2d(self.fc_channels, 1, 1)
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(widths[3], 1, 1)
            self.up_score = bilinear_upsampler()
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(widths[2], 1, 1)
            self.up_pool4 = bilinear_upsampler()

    def config(self) -> dict:
        return {"variant": self.variant, "base_width": self.base_width, "fc_channels": self.fc_channels,
                **self.input_config()}

    def padded_logits(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(x)
        score = self.score(self.fc(x))
        if self.variant in ("16s", "8s"):
            score = self.up_score(score) + self.score_pool4(pooled[3])
        if self.variant == "8s":
            score = self.up_pool4(score) + self.score_pool3(pooled[2])
        return F.interpolate(score, size=size, mode="bilinear", align_corners=False)


# --- PSPNet -----------------------------------------------------------------------------------

PSP_BACKBONES = ("resnet50", "resnet101")
PSP_BINS = (1, 2, 3, 6)


class PSPNet(Segmenter):
    """PSPNet (Zhao et al. 2017): a ResNet with layers 3 and 4 dilated instead of strided (output
    stride 8), its last feature map average-pooled to 1×1, 2×2, 3×3 and 6×6 bins, each reduced to a
    quarter of the channels, upsampled and stacked with the features, then a 3×3 convolution to
    512 channels and the 1×1 score. (The paper's auxiliary loss on layer 3 is left out: the
    contract has one output, and GroupNorm already makes the deep backbone trainable.)"""

    stride = 8

    def __init__(self, backbone: str = "resnet50", input_kind: str = "phase", bands: Optional[Sequence[str]] = None):
        super().__init__(input_kind, bands)
        from torchvision.models import resnet50, resnet101

        builders = {"resnet50": resnet50, "resnet101": resnet101}
        if backbone not in builders:
            raise ValueError(f"Unknown PSPNet backbone '{backbone}': use one of {', '.join(PSP_BACKBONES)}.")
        self.backbone_name = backbone
        net = builders[backbone](weights=None, replace_stride_with_dilation=[False, True, True], norm_layer=group_norm)
        adapt_first_conv(net, self.in_channels)
        self.backbone = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                      net.layer4)
        channels = net.fc.in_features
        reduced = channels // len(PSP_BINS)
        self.pyramid = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(bins), *conv_norm_relu(channels, reduced, 1))
                                      for bins in PSP_BINS])
        self.head = nn.Sequential(*conv_norm_relu(channels + reduced * len(PSP_BINS), 512), nn.Dropout2d(0.1),
                                  nn.Conv2d(512, 1, 1))

    def config(self) -> dict:
        return {"backbone": self.backbone_name, **self.input_config()}

    def padded_logits(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = self.backbone(x)
        levels = [features] + [F.interpolate(level(features), size=features.shape[-2:], mode="bilinear",
                                             align_corners=False) for level in self.pyramid]
        return F.interpolate(self.head(torch.cat(levels, dim=1)), size=size, mode="bilinear", align_corners=False)


# --- DeepLabV3 --------------------------------------------------------------------------------

DEEPLAB_BACKBONES = {"resnet50": 8, "mobilenet_v3_large": 16}  # name -> output stride


class DeepLabV3(Segmenter):
    """torchvision's DeepLabV3 (one output class, no auxiliary head, no weights downloaded), its
    first convolution taking the input's channels and its BatchNorm layers made GroupNorm."""

    def __init__(self, backbone: str = "resnet50", input_kind: str = "phase", bands: Optional[Sequence[str]] = None):
        super().__init__(input_kind, bands)
        from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, deeplabv3_resnet50

        builders = {"resnet50": deeplabv3_resnet50, "mobilenet_v3_large": deeplabv3_mobilenet_v3_large}
        if backbone not in builders:
            raise ValueError(f"Unknown DeepLabV3 backbone '{backbone}': use one of {', '.join(DEEPLAB_BACKBONES)}.")
        self.backbone_name = backbone
        self.stride = DEEPLAB_BACKBONES[backbone]
        self.net = builders[backbone](weights=None, weights_backbone=None, num_classes=1, aux_loss=None)
        replace_batch_norm(self.net)
        adapt_first_conv(self.net, self.in_channels)

    def config(self) -> dict:
        return {"backbone": self.backbone_name, **self.input_config()}

    def padded_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def with_cores(model: UNet) -> UNet:
    """A copy of a trained (ECA-)U-Net with the ``cores`` output added, for fine-tuning: every
    weight kept, the core channel starting as the extent channel (a core lies inside its extent)."""
    if not isinstance(model, UNet):
        raise MineSARError(f"Only U-Net and ECA-UNet map cores, not {model.architecture or type(model).__name__}.")
    if model.cores:
        return model
    grown = type(model)(model.base_width, model.input_kind, model.bands, cores=True)
    grown.architecture = model.architecture
    state = model.state_dict()
    for key in ("head.weight", "head.bias"):
        state[key] = torch.cat([state[key], state[key]], dim=0)
    grown.load_state_dict(state)
    return grown
