"""A folder of simulated GF-2 scenes with their truth, for the mine-patch work.

    dataset.json            recipe, seed, bands, codes, what each preliminary mask got wrong
    split.json              train / val / test scenes (reproducible for the seed)
    images/NAME.tif         uint16 B, G, R, NIR at the recipe's pixel size (UTM 48N, Ningxia)
    masks/NAME.tif          uint8 truth: 0 background, 1 coal gangue, 2 iron ore, 3 clay, 4 sandstone
    preliminary/NAME.tif    uint8 imperfect first answer (1 = mine patch)
    landcover/NAME.tif      uint8 ESA WorldCover codes at ≈10 m (a whole number of image pixels)
    dem/NAME.tif            float32 terrain height (m) on the image grid; the sun's azimuth and
                            elevation that lit the scene are in dataset.json (per scene)
    patches.gpkg            layers "patches" (scene, patch_id, kind, kind_code, area_m2) and
                            "confusers" (scene, kind): shadows aside, what looks like a mine and is not
"""
import os
from dataclasses import asdict
from typing import Optional

import numpy as np
from osgeo import gdal, ogr, osr
from shapely import affinity

from ..dataset.layout import DEFAULT_FRACTIONS, SPLITS, StagedFolder, assign_splits, write_json
from ..errors import MineSARError
from ..io.rasters import _GdalFailures, epsg_wkt
from ..progress import SILENT, Progress
from .optical import BANDS, MINE_CODES, WORLDCOVER, OpticalRecipe, landcover_factor, simulate_optical_scene

OPTICAL_EPSG = 32648  # UTM 48N: the Weiningbeishan area of seed 003
_ORIGIN = (560_000.0, 4_150_000.0)
FORMAT_NAME = "minesar-optical-scenes"
# ESA WorldCover's own legend colours, so the land cover looks as users know it.
WORLDCOVER_COLOURS = {10: (0, 100, 0), 20: (255, 187, 34), 30: (255, 255, 76), 40: (240, 150, 255),
                      50: (250, 0, 0), 60: (180, 180, 180), 80: (0, 100, 200)}
KIND_COLOURS = {1: (40, 40, 40), 2: (190, 90, 50), 3: (235, 230, 210), 4: (200, 200, 120)}


def scene_geotransform(recipe: OpticalRecipe, index: int):
    x0 = _ORIGIN[0] + index * (recipe.cols * recipe.pixel_size_m + 500.0)
    return (x0, recipe.pixel_size_m, 0.0, _ORIGIN[1], 0.0, -recipe.pixel_size_m)


_COLOUR_INTERPRETATION = {"blue": gdal.GCI_BlueBand, "green": gdal.GCI_GreenBand, "red": gdal.GCI_RedBand}


def _write(path, bands, gdal_type, geotransform, crs_wkt, descriptions=(), colours=None):
    rows, cols = bands[0].shape
    with _GdalFailures() as failures:
        dataset = gdal.GetDriverByName("GTiff").Create(path, cols, rows, len(bands), gdal_type,
                                                       ["COMPRESS=DEFLATE", "ZLEVEL=1", "TILED=YES"])
        if dataset is None:
            raise MineSARError(f"{path}: cannot be created ({failures.describe()}).")
        dataset.SetGeoTransform(list(geotransform))
        dataset.SetProjection(crs_wkt)
        for index, array in enumerate(bands):
            band = dataset.GetRasterBand(index + 1)
            band.WriteArray(array)
            if index < len(descriptions):
                band.SetDescription(descriptions[index])
                # QGIS's default renderer takes red/green/blue from the colour interpretation: a
                # scene then opens in true colour, not blue shown as red.
                interpretation = _COLOUR_INTERPRETATION.get(descriptions[index])
                if interpretation is not None:
                    band.SetColorInterpretation(interpretation)
        if colours:
            table = gdal.ColorTable()
            for value, rgb in colours.items():
                table.SetColorEntry(int(value), tuple(rgb) + (255,))
            dataset.GetRasterBand(1).SetRasterColorTable(table)
        dataset = None
    if failures.messages:
        raise MineSARError(f"{path}: writing failed ({failures.describe()}).")


def simulate_optical_scenes(folder: str, recipe: OpticalRecipe, count: int, seed: int,
                            split_fractions: Optional[dict] = None, progress: Progress = SILENT) -> dict:
    recipe.check()
    if count < 1:
        raise MineSARError("The number of scenes to simulate must be at least 1.")
    staged = StagedFolder(folder)
    staged.create(("images", "masks", "preliminary", "landcover", "dem"))
    try:
        crs_wkt = epsg_wkt(OPTICAL_EPSG)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(OPTICAL_EPSG)
        vector = ogr.GetDriverByName("GPKG").CreateDataSource(os.path.join(staged.path, "patches.gpkg"))
        patch_layer = vector.CreateLayer("patches", srs, ogr.wkbPolygon)
        for name, kind in (("scene", ogr.OFTString), ("patch_id", ogr.OFTInteger), ("kind", ogr.OFTString),
                           ("kind_code", ogr.OFTInteger), ("area_m2", ogr.OFTReal)):
            patch_layer.CreateField(ogr.FieldDefn(name, kind))
        confuser_layer = vector.CreateLayer("confusers", srs, ogr.wkbPolygon)
        for name in ("scene", "kind"):
            confuser_layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))
        scenes = []
        patch_id = 0
        for index in range(count):
            progress.update(index / count)
            scene = simulate_optical_scene(recipe, np.random.default_rng([seed, index]))
            name = f"scene_{index:06d}"
            geotransform = scene_geotransform(recipe, index)
            _write(os.path.join(staged.path, "images", name + ".tif"), list(scene.image), gdal.GDT_UInt16,
                   geotransform, crs_wkt, BANDS)
            _write(os.path.join(staged.path, "masks", name + ".tif"), [scene.truth], gdal.GDT_Byte, geotransform,
                   crs_wkt, ("mine patch kind",), KIND_COLOURS)
            _write(os.path.join(staged.path, "preliminary", name + ".tif"), [scene.preliminary], gdal.GDT_Byte,
                   geotransform, crs_wkt, ("preliminary mine patches",))
            factor = scene.landcover_factor
            coarse = (geotransform[0], geotransform[1] * factor, 0.0, geotransform[3], 0.0, geotransform[5] * factor)
            _write(os.path.join(staged.path, "landcover", name + ".tif"), [scene.landcover], gdal.GDT_Byte, coarse,
                   crs_wkt, ("ESA WorldCover class",), WORLDCOVER_COLOURS)
            _write(os.path.join(staged.path, "dem", name + ".tif"), [scene.dem], gdal.GDT_Float32, geotransform,
                   crs_wkt, ("height (m)",))
            to_map = [geotransform[1], 0.0, 0.0, geotransform[5], geotransform[0], geotransform[3]]
            for patch in scene.patches:
                patch_id += 1
                feature = ogr.Feature(patch_layer.GetLayerDefn())
                feature.SetField("scene", name)
                feature.SetField("patch_id", patch_id)
                feature.SetField("kind", patch.kind)
                feature.SetField("kind_code", MINE_CODES[patch.kind])
                feature.SetField("area_m2", float(patch.area_m2(recipe.pixel_size_m)))
                feature.SetGeometry(ogr.CreateGeometryFromWkb(affinity.affine_transform(patch.polygon, to_map).wkb))
                patch_layer.CreateFeature(feature)
            for kind, polygon in scene.confusers:
                feature = ogr.Feature(confuser_layer.GetLayerDefn())
                feature.SetField("scene", name)
                feature.SetField("kind", kind)
                feature.SetGeometry(ogr.CreateGeometryFromWkb(affinity.affine_transform(polygon, to_map).wkb))
                confuser_layer.CreateFeature(feature)
            scenes.append({"name": name, "patches": len(scene.patches),
                           "kinds": sorted({p.kind for p in scene.patches}),
                           "preliminary_errors": scene.preliminary_notes,
                           "sun_azimuth_deg": round(scene.sun_azimuth_deg, 3),
                           "sun_elevation_deg": round(scene.sun_elevation_deg, 3)})
        vector = None
        splits = assign_splits([s["name"] for s in scenes], seed, split_fractions)
        listing = {s: [f"images/{scene['name']}.tif" for scene in scenes if splits[scene["name"]] == s] for s in SPLITS}
        write_json(os.path.join(staged.path, "split.json"),
                   dict({"seed": seed, "fractions": split_fractions or DEFAULT_FRACTIONS, "unit": "scene"}, **listing))
        description = {
            "format": FORMAT_NAME,
            "version": 1,
            "created_by": "minesar:simulateopticalscenes",
            "seed": seed,
            "recipe": asdict(recipe),
            "crs": f"EPSG:{OPTICAL_EPSG}",
            "bands": list(BANDS),
            "mine_kinds": MINE_CODES,
            "landcover_codes": WORLDCOVER,
            "landcover_pixel_m": landcover_factor(recipe.pixel_size_m) * recipe.pixel_size_m,
            "scenes": scenes,
            "patches": patch_id,
            "split_counts": {s: len(listing[s]) for s in SPLITS},
        }
        write_json(os.path.join(staged.path, "dataset.json"), description)
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    progress.finish()
    return description
