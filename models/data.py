"""A dataset folder (core/dataset/layout.py) as torch samples in the detector contract's form.

Instance masks come from the COCO polygons, not from masks/*.tif: that raster is the union of the
basins, and touching basins would merge into one there.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from osgeo import gdal

from ..core.dataset.layout import SPLITS, DatasetIndex, rasterize_rings
from ..core.errors import MineSARError
from .detectors import encode_phase

# Peak subsidence of a basin (mm) in annotations.json (core.simulation.generate.basin_attributes).
DEPTH_KEY = "depth_mm"


def open_dataset(folder: str) -> DatasetIndex:
    if not folder or not os.path.isdir(folder):
        raise MineSARError(f"{folder}: dataset folder not found.")
    return DatasetIndex.open(folder)


def read_phase(path: str) -> np.ndarray:
    dataset = gdal.Open(path)
    if dataset is None:
        raise MineSARError(f"{path}: cannot be read as a raster.")
    band = dataset.GetRasterBand(1)
    phase = band.ReadAsArray().astype(np.float32)
    nodata = band.GetNoDataValue()
    if nodata is not None and np.isfinite(nodata):
        phase[phase == nodata] = np.nan
    return phase


def instance_masks(annotations: Sequence[Dict], rows: int, cols: int) -> np.ndarray:
    """[K, rows, cols] uint8 masks of the annotations' polygons (all rings of one annotation together)."""
    masks = np.zeros((len(annotations), rows, cols), dtype=np.uint8)
    for index, annotation in enumerate(annotations):
        rings = [list(zip(flat[0::2], flat[1::2])) for flat in annotation.get("segmentation") or [] if len(flat) >= 6]
        if rings:
            masks[index] = rasterize_rings(rings, rows, cols)
        else:  # no polygon: the COCO box is all there is
            x, y, w, h = annotation["bbox"]
            masks[index, int(y):int(y + h), int(x):int(x + w)] = 1
    return masks


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """xyxy boxes around masks, pixel edges (a one-pixel mask has a 1 × 1 box, never an empty one)."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for index, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[index] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def augment(phase: np.ndarray, masks: np.ndarray, flip_x: bool, flip_y: bool, quarter_turns: int
            ) -> Tuple[np.ndarray, np.ndarray]:
    """Flip and rotate the phase and its masks together (SPEC §2). A basin's fringes look the same
    in any orientation, and the boxes are recomputed from the masks afterwards, so they follow."""
    if flip_x:
        phase, masks = phase[:, ::-1], masks[:, :, ::-1]
    if flip_y:
        phase, masks = phase[::-1, :], masks[:, ::-1, :]
    if quarter_turns:
        phase = np.rot90(phase, quarter_turns, axes=(0, 1))
        masks = np.rot90(masks, quarter_turns, axes=(1, 2))
    return np.ascontiguousarray(phase), np.ascontiguousarray(masks)


class SubsidenceDataset(torch.utils.data.Dataset):
    """(image [2, H, W] float32, target) per image of one split.

    The target has the contract's ``boxes`` and ``masks`` plus what evaluation needs:
    ``depth_mm`` (float32 [K], NaN where unknown) and ``name``. Random flips and quarter turns when
    ``augment`` is set, drawn from torch's generator so ``torch.manual_seed`` fixes them.
    """

    def __init__(self, folder: str, split: Optional[str] = "train", augment: bool = False):
        if split is not None and split not in SPLITS:
            raise MineSARError(f"Unknown split '{split}': use one of {', '.join(SPLITS)}.")
        self.index = open_dataset(folder)
        self.folder = folder
        self.split = split
        self.augment = augment
        self.images = self.index.images(split)
        by_image: Dict[int, List[Dict]] = {}
        for annotation in self.index.coco.get("annotations", []):
            by_image.setdefault(annotation["image_id"], []).append(annotation)
        self._annotations = by_image

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int):
        image = self.images[item]
        phase = read_phase(self.index.path(image["file_name"]))
        rows, cols = phase.shape
        annotations = self._annotations.get(image["id"], [])
        masks = instance_masks(annotations, rows, cols)
        depths = np.array([float(a.get(DEPTH_KEY, np.nan)) for a in annotations], dtype=np.float32)
        if self.augment:
            flips = torch.randint(0, 2, (2,)).tolist()
            turns = int(torch.randint(0, 4, (1,))) if rows == cols else 2 * int(torch.randint(0, 2, (1,)))
            phase, masks = augment(phase, masks, bool(flips[0]), bool(flips[1]), turns)
        # A basin cut away entirely (it cannot be here, but a polygon off the tile can) has no box.
        keep = masks.any(axis=(1, 2))
        masks, depths = masks[keep], depths[keep]
        target = {
            "boxes": torch.from_numpy(boxes_of(masks)),
            "masks": torch.from_numpy(masks),
            DEPTH_KEY: torch.from_numpy(depths),
            "name": DatasetIndex.stem(image),
        }
        return torch.from_numpy(encode_phase(phase)), target


def collate(batch):
    """(images [N, 2, H, W], list of targets). Tiles of one dataset share a size; say so if not."""
    images, targets = zip(*batch)
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise MineSARError(f"Images of different sizes in one batch ({sorted(shapes)}): "
                           "a dataset's tiles must all have the same size.")
    return torch.stack(images), list(targets)


def contract_targets(targets: List[Dict]) -> List[Dict]:
    """Only the contracts' keys: what ``losses`` receives whatever the network (boxes and instance
    masks from interferogram datasets, a semantic map from optical scenes). Left where they are:
    each network moves to its device what it uses (Light YOLO-Basin only the boxes, not the
    instance masks a GPU would otherwise receive for nothing)."""
    return [{key: t[key] for key in ("boxes", "masks", "semantic") if key in t} for t in targets]


def tile_size_of(dataset: SubsidenceDataset) -> int:
    if not dataset.images:
        return 0
    return int(max(dataset.images[0]["width"], dataset.images[0]["height"]))
