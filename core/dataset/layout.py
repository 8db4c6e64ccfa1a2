"""The training-dataset folder every MineSAR model reads, written the same way for simulated and
real data.

    dataset.json       what made it: source, recipe or presets, bands, units, classes, counts
    split.json         train / val / test lists, their seed and fractions (the split unit is a group:
                       rotations of a tile, or neighbouring tiles, never straddle two splits)
    annotations.json   COCO instances: one image entry per image, polygon masks in pixel units
    images/NAME.tif    float32 wrapped phase (radians), NaN = no data, georeferenced when known
    masks/NAME.tif     uint8 semantic mask (1 = mining subsidence), same grid
    labels/NAME.txt    YOLO boxes "0 xc yc w h" (normalised), one line per instance
    rgb/NAME.tif       optional rasmph-style colour rendering of the phase

All three label formats come from the same boolean instance masks, so they agree image by image.
The folder is assembled under a temporary name and renamed when complete: a failure or a cancel
leaves no half-made dataset.
"""
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from ..errors import MineSARError
from ..io.colours import brightness_from, phase_to_rgb
from ..io.rasters import _GdalFailures
from ..io.vectorize import polygonize, rasterize

FORMAT_NAME = "minesar-dataset"
FORMAT_VERSION = 1
CLASS_NAME = "mining subsidence"
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
_TIFF_OPTIONS = ["COMPRESS=DEFLATE", "ZLEVEL=1"]


@dataclass
class Sample:
    """One image of a dataset and its instances (boolean masks on the image grid)."""

    name: str
    phase: np.ndarray
    instances: List[np.ndarray]
    group: str
    instance_attributes: List[Dict] = field(default_factory=list)
    geotransform: Optional[Tuple[float, ...]] = None
    crs_wkt: Optional[str] = None
    tags: Dict[str, str] = field(default_factory=dict)
    attributes: Dict = field(default_factory=dict)
    brightness: Optional[np.ndarray] = None


def mask_polygons(mask: np.ndarray) -> List[List[Tuple[float, float]]]:
    """Outer rings (pixel-edge coordinates, x = column) of the connected parts of a mask.

    The rings follow pixel edges, so rasterising them by pixel centres gives the mask back.
    Holes are dropped: COCO polygons cannot carry them (a basin has none).
    """
    # 8-connectedness: a diagonal step still belongs to the same footprint.
    return [list(polygon.exterior.coords) for _, polygon in polygonize(mask.astype(np.uint8), connectivity=8)]


def rasterize_rings(rings: Sequence[Sequence[Tuple[float, float]]], rows: int, cols: int) -> np.ndarray:
    """Pixels whose centre lies inside any of the rings (pixel coordinates): the inverse of
    ``mask_polygons``, used to check a COCO polygon against its mask."""
    return rasterize(rings, (rows, cols), dtype=bool)


def yolo_line(mask: np.ndarray) -> Optional[str]:
    """'0 xc yc w h' of the mask's bounding box, normalised by the image size."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    height, width = mask.shape
    x0, x1 = cols[0], cols[-1] + 1
    y0, y1 = rows[0], rows[-1] + 1
    return (f"0 {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")


def assign_splits(groups: Iterable[str], seed: int, fractions: Dict[str, float] = None) -> Dict[str, str]:
    """group → split, reproducible for a seed and independent of the order groups arrive in.

    Counts follow the fractions (largest remainder), and validation and test get at least one
    group each whenever there are three or more groups and their fraction is not zero.
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    total = sum(fractions.get(s, 0.0) for s in SPLITS)
    if total <= 0 or any(fractions.get(s, 0.0) < 0 for s in SPLITS):
        raise MineSARError(f"Split fractions {fractions} must be non-negative and not all zero.")
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    exact = {s: fractions.get(s, 0.0) / total * len(unique) for s in SPLITS}
    counts = {s: int(np.floor(exact[s])) for s in SPLITS}
    for s in sorted(SPLITS, key=lambda s: exact[s] - counts[s], reverse=True)[: len(unique) - sum(counts.values())]:
        counts[s] += 1
    if len(unique) >= 3:
        for s in ("val", "test"):
            if fractions.get(s, 0.0) > 0 and counts[s] == 0:
                counts[s] += 1
                counts["train"] -= 1
    result, start = {}, 0
    for s in SPLITS:
        for group in shuffled[start:start + counts[s]]:
            result[group] = s
        start += counts[s]
    return result


class StagedFolder:
    """A folder built under a temporary name beside its target and renamed into place at the end.

    The target must be new or empty (an existing file or a folder with content is refused, so
    nothing of the user's is replaced); ``discard`` removes the partial work.
    """

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        if os.path.isfile(self.folder):
            raise MineSARError(f"{self.folder}: is a file; the output needs a folder.")
        if os.path.isdir(self.folder) and os.listdir(self.folder):
            raise MineSARError(f"{self.folder}: the folder is not empty; choose a new or empty folder.")
        parent = os.path.dirname(self.folder)
        self.path = os.path.join(parent, f".{os.path.basename(self.folder)}.partial-{uuid.uuid4().hex[:8]}")

    def create(self, subfolders: Sequence[str]) -> None:
        try:
            for sub in subfolders:
                os.makedirs(os.path.join(self.path, sub))
        except OSError as error:
            raise MineSARError(f"{self.folder}: cannot create the output folder ({error}).") from error

    def commit(self) -> None:
        if os.path.isdir(self.folder):
            os.rmdir(self.folder)  # empty, checked at the start: the finished one takes its place
        os.replace(self.path, self.folder)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_json(path: str, content, indent: Optional[int] = 1) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=indent)


class DatasetWriter:
    """Writes samples into a dataset folder under a temporary name; ``with`` publishes it."""

    def __init__(self, folder: str, description: Dict, split_seed: int = 0,
                 split_fractions: Dict[str, float] = None, rgb: bool = False,
                 group_splits: Optional[Dict[str, str]] = None):
        """``group_splits`` fixes each group's split (tiling decides it spatially); otherwise the
        groups are split at the end by ``assign_splits``."""
        self._staged = StagedFolder(folder)
        self.folder = self._staged.folder
        self._temporary = self._staged.path
        self.description = dict(description)
        self.split_seed = split_seed
        self.split_fractions = dict(DEFAULT_FRACTIONS if split_fractions is None else split_fractions)
        self.rgb = rgb
        self._group_splits = group_splits
        self._images: List[Dict] = []
        self._annotations: List[Dict] = []
        self._names = set()

    def __enter__(self) -> "DatasetWriter":
        self._staged.create(("images", "masks", "labels") + (("rgb",) if self.rgb else ()))
        return self

    @property
    def image_count(self) -> int:
        return len(self._images)

    @property
    def instance_count(self) -> int:
        return len(self._annotations)

    def add(self, sample: Sample) -> None:
        if sample.name in self._names:
            raise MineSARError(f"Two dataset images are called {sample.name}.")
        self._names.add(sample.name)
        rows, cols = sample.phase.shape
        image_id = len(self._images) + 1
        self._write_tiff(os.path.join("images", sample.name + ".tif"), [sample.phase.astype(np.float32)],
                         gdal.GDT_Float32, sample, nodata=float("nan"), tags=sample.tags)
        semantic = np.zeros((rows, cols), dtype=np.uint8)
        lines = []
        for index, mask in enumerate(sample.instances):
            if mask.shape != (rows, cols):
                raise MineSARError(f"{sample.name}: an instance mask is {mask.shape}, the image {(rows, cols)}.")
            line = yolo_line(mask)
            if line is None:
                continue
            semantic |= mask.astype(np.uint8)
            lines.append(line)
            rows_any = np.flatnonzero(mask.any(axis=1))
            cols_any = np.flatnonzero(mask.any(axis=0))
            bbox = [int(cols_any[0]), int(rows_any[0]), int(cols_any[-1] - cols_any[0] + 1),
                    int(rows_any[-1] - rows_any[0] + 1)]
            annotation = {
                "id": len(self._annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "segmentation": [[round(v, 3) for point in ring for v in point] for ring in mask_polygons(mask)],
                "area": int(mask.sum()),
                "bbox": bbox,
                "iscrowd": 0,
            }
            if index < len(sample.instance_attributes):
                annotation.update(sample.instance_attributes[index])
            self._annotations.append(annotation)
        self._write_tiff(os.path.join("masks", sample.name + ".tif"), [semantic], gdal.GDT_Byte, sample, nodata=None)
        with open(os.path.join(self._temporary, "labels", sample.name + ".txt"), "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
        if self.rgb:
            brightness = None
            if sample.brightness is not None:
                reference = float(np.nanmean(sample.brightness)) or 1.0
                brightness = brightness_from(sample.brightness, reference)
            colours = phase_to_rgb(sample.phase, brightness)
            self._write_tiff(os.path.join("rgb", sample.name + ".tif"), [colours[..., i] for i in range(3)],
                             gdal.GDT_Byte, sample, nodata=None, photometric_rgb=True)
        entry = {"id": image_id, "file_name": f"images/{sample.name}.tif", "width": cols, "height": rows,
                 "group": sample.group}
        entry.update(sample.attributes)
        self._images.append(entry)

    def _write_tiff(self, relative, bands, gdal_type, sample, nodata, tags=None, photometric_rgb=False):
        path = os.path.join(self._temporary, relative)
        rows, cols = bands[0].shape
        options = list(_TIFF_OPTIONS) + (["PHOTOMETRIC=RGB"] if photometric_rgb else [])
        with _GdalFailures() as failures:
            dataset = gdal.GetDriverByName("GTiff").Create(path, cols, rows, len(bands), gdal_type, options)
            if dataset is None:
                raise MineSARError(f"{self.folder}: cannot write {relative} ({failures.describe()}).")
            if sample.geotransform is not None:
                dataset.SetGeoTransform(list(sample.geotransform))
            if sample.crs_wkt:
                dataset.SetProjection(sample.crs_wkt)
            if tags:
                dataset.SetMetadata({str(k): str(v) for k, v in tags.items()})
            for index, array in enumerate(bands):
                band = dataset.GetRasterBand(index + 1)
                if nodata is not None:
                    band.SetNoDataValue(nodata)
                band.WriteArray(array)
            dataset = None
        if failures.messages:
            raise MineSARError(f"{self.folder}: writing {relative} failed ({failures.describe()}).")

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None:
            self._staged.discard()
            return False
        try:
            self._finish()
            self._staged.commit()
        except BaseException:
            self._staged.discard()
            raise
        return False

    def _finish(self) -> None:
        if not self._images:
            raise MineSARError(f"{self.folder}: no image was produced, so no dataset was written.")
        splits = self._group_splits or assign_splits(
            (image["group"] for image in self._images), self.split_seed, self.split_fractions)
        listing = {s: [] for s in SPLITS}
        for image in self._images:
            image["split"] = splits[image["group"]]
            listing[image["split"]].append(image["file_name"])
        coco = {
            "info": {"description": self.description.get("title", "MineSAR dataset"), "version": FORMAT_VERSION},
            "images": self._images,
            "annotations": self._annotations,
            "categories": [{"id": 1, "name": CLASS_NAME, "supercategory": "deformation"}],
        }
        split = {"seed": self.split_seed, "fractions": self.split_fractions, "unit": "group"}
        split.update(listing)
        self.description.update({
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "classes": [CLASS_NAME],
            "bands": ["wrapped phase (radians)"],
            "images": len(self._images),
            "instances": len(self._annotations),
            "split_counts": {s: len(listing[s]) for s in SPLITS},
        })
        write_json(os.path.join(self._temporary, "annotations.json"), coco, indent=None)
        write_json(os.path.join(self._temporary, "split.json"), split)
        write_json(os.path.join(self._temporary, "dataset.json"), self.description)


@dataclass
class DatasetIndex:
    """A dataset folder read back: what training and evaluation iterate over."""

    folder: str
    description: Dict
    split: Dict
    coco: Dict

    @classmethod
    def open(cls, folder: str) -> "DatasetIndex":
        documents = {}
        for name in ("dataset.json", "split.json", "annotations.json"):
            path = os.path.join(folder, name)
            try:
                with open(path, encoding="utf-8") as handle:
                    documents[name] = json.load(handle)
            except FileNotFoundError:
                raise MineSARError(f"{folder}: not a MineSAR dataset ({name} is missing).") from None
            except ValueError as error:
                raise MineSARError(f"{path}: not valid JSON ({error}).") from None
        if documents["dataset.json"].get("format") != FORMAT_NAME:
            raise MineSARError(f"{folder}: dataset.json does not describe a MineSAR dataset.")
        return cls(folder, documents["dataset.json"], documents["split.json"], documents["annotations.json"])

    def images(self, split: Optional[str] = None) -> List[Dict]:
        return [image for image in self.coco["images"] if split is None or image.get("split") == split]

    def annotations_of(self, image_id: int) -> List[Dict]:
        return [a for a in self.coco["annotations"] if a["image_id"] == image_id]

    def path(self, relative: str) -> str:
        return os.path.join(self.folder, relative)

    @staticmethod
    def stem(image: Dict) -> str:
        return os.path.splitext(os.path.basename(image["file_name"]))[0]
