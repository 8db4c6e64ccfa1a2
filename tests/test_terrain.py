"""Terrain illumination on planes whose incidence angle is known in closed form."""
import math

import numpy as np
import pytest

from minesar.core.errors import MineSARError
from minesar.core.segmentation.terrain import illumination

NORTH_UP = (500_000.0, 2.0, 0.0, 4_000_000.0, 0.0, -2.0)  # 2 m pixels, rows run south


def plane(slope_deg, rises_towards, shape=(20, 30), pixel=2.0):
    """Heights of a plane rising at ``slope_deg`` towards the compass direction ``rises_towards``."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(float)
    east, north = cols * pixel, -rows * pixel
    direction = math.radians(rises_towards)
    return math.tan(math.radians(slope_deg)) * (east * math.sin(direction) + north * math.cos(direction)) + 300.0


def test_illumination_of_planes_matches_the_incidence_angle():
    # Flat ground: 1 whatever the sun.
    assert np.allclose(illumination(np.full((5, 5), 80.0), NORTH_UP, 137.0, 25.0), 1.0)
    # A 30° slope facing south (rising northwards) under a southern sun 30° high: incidence 30°.
    lit = illumination(plane(30, 0), NORTH_UP, 180.0, 30.0)
    assert np.allclose(lit, math.cos(math.radians(30)) / math.sin(math.radians(30)), atol=1e-5)
    # The same slope facing north: the sun grazes it (incidence 90°), and steeper it faces away: 0.
    assert np.allclose(illumination(plane(30, 180), NORTH_UP, 180.0, 30.0), 0.0, atol=2e-5)  # float32
    assert np.allclose(illumination(plane(45, 180), NORTH_UP, 180.0, 30.0), 0.0)
    # Facing east under a southern sun: the sun's horizontal part runs along the slope, cos i = cos s · sin e.
    assert np.allclose(illumination(plane(20, 270), NORTH_UP, 180.0, 30.0), math.cos(math.radians(20)), atol=1e-5)
    # A western sun lights the west-facing slope (rising eastwards) and not the one rising westwards.
    assert illumination(plane(25, 90), NORTH_UP, 270.0, 20.0).mean() > 1.5
    assert illumination(plane(25, 270), NORTH_UP, 270.0, 20.0).max() < 0.2


def test_a_south_up_grid_gives_the_same_illumination():
    heights = plane(25, 60)
    south_up = (NORTH_UP[0], 2.0, 0.0, NORTH_UP[3] - 2.0 * heights.shape[0], 0.0, 2.0)
    assert np.allclose(illumination(heights[::-1], south_up, 200.0, 30.0)[::-1],
                       illumination(heights, NORTH_UP, 200.0, 30.0), atol=1e-5)


def test_unknown_heights_stay_unknown_and_bad_input_is_named():
    heights = plane(10, 0)
    heights[5, 5] = np.nan
    lit = illumination(heights, NORTH_UP, 180.0, 30.0)
    assert np.isnan(lit[5, 5]) and np.isfinite(lit[15, 20])
    with pytest.raises(MineSARError, match="sun elevation"):
        illumination(heights, NORTH_UP, 180.0, 0.0)
    with pytest.raises(MineSARError, match="rotated"):
        illumination(heights, (0.0, 2.0, 0.5, 0.0, 0.0, -2.0), 180.0, 30.0)
    with pytest.raises(MineSARError, match="2 × 2"):
        illumination(np.zeros((1, 9)), NORTH_UP, 180.0, 30.0)


def test_a_dem_over_an_image_in_degrees_is_refused(tmp_path):
    from osgeo import gdal, osr

    from minesar.core.segmentation.grid import Grid
    from minesar.core.segmentation.mrs import MRSParameters
    from minesar.core.segmentation.pipeline import refine_patches

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    paths = {}
    for name, bands in (("image", 4), ("dem", 1)):
        paths[name] = str(tmp_path / f"{name}.tif")
        dataset = gdal.GetDriverByName("GTiff").Create(paths[name], 20, 20, bands, gdal.GDT_Float32)
        dataset.SetGeoTransform((106.0, 1e-5, 0.0, 38.0, 0.0, -1e-5))
        dataset.SetProjection(srs.ExportToWkt())
        for band in range(bands):
            dataset.GetRasterBand(band + 1).Fill(100.0)
        dataset = None
    grid = Grid.of_raster(paths["image"])
    with pytest.raises(MineSARError, match="image is in degrees"):
        refine_patches(paths["image"], np.ones((20, 20), bool), grid, MRSParameters(), dem=paths["dem"],
                       sun_azimuth_deg=180.0, sun_elevation_deg=30.0)
