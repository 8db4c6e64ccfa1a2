"""A folder of GF-2 scenes with their truth (core/simulation/optical_scenes.py writes one) as torch
samples in the segmentation contract's form, for the mine-patch networks.

    split.json        train / val / test: lists of "images/NAME.tif" (whole scenes: tiles of one
                      scene never straddle two splits)
    images/NAME.tif   the bands (GF-2: blue, green, red, nir; 16-bit)
    masks/NAME.tif    truth: > 0 is a mine patch (the simulator writes its kind code)
    dataset.json      optional: what made the folder (kept in the checkpoint's metadata)

Scenes are cut into square tiles: overlapping ones (``step`` < tile) with flips and quarter
turns for training, and for evaluation tiles that split the scene between them: each pixel is
*owned* by exactly one tile (target["owned"]), so scoring counts every pixel once even though
the last row and column of tiles are pulled back inside the scene and overlap their neighbours.
"""
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from osgeo import gdal

from ..core.dataset.layout import SPLITS
from ..core.dataset.tiling import tile_starts
from ..core.errors import MineSARError
from ..core.io.optical import GF2_BANDS, Orthophoto, pooled_percentile_limits
from ..core.io.rasters import Window
from ..core.progress import SILENT, Progress
from .segmenters import PERCENTILES, normalisation_limits, optical_input, percentile_normalisation

TILE_SIZE = 256  # seed 003's tiles: 256², overlapping by half (step 128) for training


class OpticalFolder:
    """The scenes of a folder by split, their image and truth paths."""

    def __init__(self, folder: str):
        if not folder or not os.path.isdir(folder):
            raise MineSARError(f"{folder}: folder of optical scenes not found.")
        self.folder = folder
        self.description = self._json("dataset.json", required=False)
        if self.description.get("format") == "minesar-dataset":
            raise MineSARError(f"{folder}: this is a dataset of interferograms; mine-patch networks train on a "
                               "folder of optical scenes (images/, masks/, split.json), e.g. from "
                               "'Simulate optical scenes'.")
        self.split = self._json("split.json", required=True)
        for subfolder in ("images", "masks"):
            if not os.path.isdir(os.path.join(folder, subfolder)):
                raise MineSARError(f"{folder}: not a folder of optical scenes ({subfolder}/ is missing).")

    def _json(self, name: str, required: bool) -> Dict:
        path = os.path.join(self.folder, name)
        if not os.path.isfile(path):
            if required:
                raise MineSARError(f"{self.folder}: not a folder of optical scenes ({name} is missing).")
            return {}
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except ValueError as error:
            raise MineSARError(f"{path}: not valid JSON ({error}).") from None

    def scenes(self, split: Optional[str] = None) -> List[str]:
        """Scene names (file stems) of one split, or of all, in split.json's order."""
        if split is not None and split not in SPLITS:
            raise MineSARError(f"Unknown split '{split}': use one of {', '.join(SPLITS)}.")
        listed = [path for s in (SPLITS if split is None else (split,)) for path in self.split.get(s, [])]
        return [os.path.splitext(os.path.basename(path))[0] for path in listed]

    def image_path(self, scene: str) -> str:
        return os.path.join(self.folder, "images", scene + ".tif")

    def mask_path(self, scene: str) -> str:
        return os.path.join(self.folder, "masks", scene + ".tif")

    def open_image(self, scene: str, bands: Sequence[str]) -> Orthophoto:
        """The scene's image, its band count checked (the error names the file and both counts)."""
        path = self.image_path(scene)
        if not os.path.isfile(path):
            raise MineSARError(f"{path}: listed in split.json but missing.")
        return Orthophoto(path, tuple(bands))


def split_normalisation(folder: str, bands: Sequence[str] = GF2_BANDS, split: str = "train",
                        percentiles: Sequence[float] = PERCENTILES, progress: Progress = SILENT) -> Dict:
    """Per-band percentiles of all the split's scenes together (exact, from histograms), as the
    checkpoint stores them: {"kind": "percentile", "percentiles", "low", "high", "bands"}."""
    scenes = OpticalFolder(folder)
    names = scenes.scenes(split)
    if not names:
        raise MineSARError(f"{folder}: the '{split}' split has no scenes to take percentiles of.")
    images = [scenes.open_image(name, bands) for name in names]
    try:
        limits = pooled_percentile_limits(images, percentiles[0], percentiles[1], progress)
    finally:
        for image in images:
            image.close()
    return percentile_normalisation(limits.low, limits.high, bands, percentiles)


def owned_ranges(starts: Sequence[int], length: int) -> List[Tuple[int, int]]:
    """Per tile along one axis, the span of pixels it owns: from its start to the next tile's."""
    ends = list(starts[1:]) + [length]
    return list(zip(starts, ends))


def _read(path: str, window: Window, bands: int) -> np.ndarray:
    dataset = gdal.Open(path)
    if dataset is None:
        raise MineSARError(f"{path}: cannot be read as a raster.")
    return np.stack([dataset.GetRasterBand(b + 1).ReadAsArray(window.col, window.row, window.width, window.height)
                     for b in range(bands)])


class OpticalSceneDataset(torch.utils.data.Dataset):
    """(image [bands, T, T] float32, target) per tile of one split's scenes.

    target: ``semantic`` uint8 [T, T] (1 = mine patch), ``owned`` bool [T, T] (pixels this tile
    scores), ``name`` ("SCENE@col,row"). ``normalisation`` is the checkpoint's; without one it is
    computed from the folder's train split. ``step`` defaults to half the tile for train, the
    tile size otherwise; ``augment`` (flips and quarter turns, from torch's generator) to split == "train".
    A scene smaller than the tile is one tile of its own size.
    """

    def __init__(self, folder: str, split: str = "train", bands: Sequence[str] = GF2_BANDS,
                 normalisation: Optional[Dict] = None, tile_size: int = TILE_SIZE, step: Optional[int] = None,
                 augment: Optional[bool] = None, progress: Progress = SILENT):
        if tile_size < 16:
            raise MineSARError(f"Tile size {tile_size}: use at least 16 pixels.")
        step = step or (tile_size // 2 if split == "train" else tile_size)
        if not 0 < step <= tile_size:
            raise MineSARError(f"Tile step {step}: use 1 to the tile size ({tile_size}).")
        self.scenes = OpticalFolder(folder)
        self.folder, self.split, self.tile_size, self.step = folder, split, int(tile_size), int(step)
        self.bands = tuple(bands)
        self.augment = split == "train" if augment is None else bool(augment)
        self.names = self.scenes.scenes(split)
        if normalisation is None:
            normalisation = split_normalisation(folder, self.bands, progress=progress)
        normalisation_limits(normalisation, len(self.bands), f"{folder}")
        self.normalisation = normalisation
        self.description = self.scenes.description
        self.tiles: List[Tuple[int, Window, Tuple[int, int, int, int]]] = []
        for index, name in enumerate(self.names):
            with self.scenes.open_image(name, self.bands) as image:
                width, height = image.width, image.height
            self._check_mask(name, width, height)
            columns = tile_starts(width, self.tile_size, self.step)
            rows = tile_starts(height, self.tile_size, self.step)
            tile_w, tile_h = min(self.tile_size, width), min(self.tile_size, height)
            for row, (row_from, row_to) in zip(rows, owned_ranges(rows, height)):
                for col, (col_from, col_to) in zip(columns, owned_ranges(columns, width)):
                    owned = (row_from - row, row_to - row, col_from - col, col_to - col)
                    self.tiles.append((index, Window(col, row, tile_w, tile_h), owned))

    def _check_mask(self, name: str, width: int, height: int) -> None:
        path = self.scenes.mask_path(name)
        dataset = gdal.Open(path) if os.path.isfile(path) else None
        if dataset is None:
            raise MineSARError(f"{path}: the truth of scene {name} is missing or unreadable.")
        if (dataset.RasterXSize, dataset.RasterYSize) != (width, height):
            raise MineSARError(f"{path}: {dataset.RasterXSize} × {dataset.RasterYSize} pixels, but its image is "
                               f"{width} × {height}.")

    @property
    def scene_count(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, item: int):
        index, window, (r0, r1, c0, c1) = self.tiles[item]
        name = self.names[index]
        raw = _read(self.scenes.image_path(name), window, len(self.bands))
        image = optical_input(raw, self.normalisation)
        semantic = (_read(self.scenes.mask_path(name), window, 1)[0] > 0).astype(np.uint8)
        owned = np.zeros(semantic.shape, dtype=bool)
        owned[r0:r1, c0:c1] = True
        if self.augment:
            flips = torch.randint(0, 2, (2,)).tolist()
            square = window.width == window.height
            turns = int(torch.randint(0, 4, (1,))) if square else 2 * int(torch.randint(0, 2, (1,)))
            stack = [image, semantic[None], owned[None]]
            if flips[0]:
                stack = [a[:, :, ::-1] for a in stack]
            if flips[1]:
                stack = [a[:, ::-1, :] for a in stack]
            if turns:
                stack = [np.rot90(a, turns, axes=(1, 2)) for a in stack]
            image, semantic, owned = stack[0], stack[1][0], stack[2][0]
        target = {"semantic": torch.from_numpy(np.ascontiguousarray(semantic)),
                  "owned": torch.from_numpy(np.ascontiguousarray(owned)),
                  "name": f"{name}@{window.col},{window.row}"}
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), target
