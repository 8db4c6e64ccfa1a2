"""Terrain illumination from a DEM and the sun's position: where mountain shadows fall.

Illumination = cos i / sin e: the cosine of the sun's incidence angle on the slope, relative to
flat ground (1 on flat ground, 0 where the sun grazes the slope, clipped at 0 for slopes facing
away). This is the normalised hillshade of QGIS's and GDAL's hillshade tools, with the azimuth
measured clockwise from north (the direction the light comes from). Cast shadows (a ridge hiding
the valley behind it) are not traced: the illumination is that of each slope on its own.
"""
import math
from typing import Sequence

import numpy as np

from ..errors import MineSARError


def illumination(dem: np.ndarray, geotransform: Sequence[float], sun_azimuth_deg: float,
                 sun_elevation_deg: float) -> np.ndarray:
    """Illumination of each DEM cell (float32; NaN where the DEM or a neighbour is NaN).

    ``geotransform`` is GDAL's (x0, dx, rx, y0, ry, dy) of a north-up or south-up grid in metres
    (heights in metres too); ``dy`` is negative for north-up, so rows run south."""
    if not 0.0 < sun_elevation_deg <= 90.0:
        raise MineSARError(f"The sun elevation {sun_elevation_deg}° must lie in (0, 90].")
    if not math.isfinite(sun_azimuth_deg):
        raise MineSARError(f"The sun azimuth {sun_azimuth_deg} is not a number of degrees.")
    _, dx, rx, _, ry, dy = geotransform
    if rx or ry or not dx or not dy:
        raise MineSARError("The DEM grid is rotated or has a zero pixel size: illumination needs a north-up grid.")
    if dem.ndim != 2 or min(dem.shape) < 2:
        raise MineSARError(f"The DEM must be a 2-D grid of at least 2 × 2 cells, not {dem.shape}.")
    # float32 throughout: a few temporaries of 4 bytes a cell, for scenes of tens of thousands of pixels a side.
    dz_drow, dz_dcol = np.gradient(np.asarray(dem, dtype=np.float32))
    east, north = dz_dcol / np.float32(dx), dz_drow / np.float32(dy)  # height change per metre east and north
    del dz_drow, dz_dcol
    azimuth, elevation = math.radians(sun_azimuth_deg), math.radians(sun_elevation_deg)
    sun = [np.float32(v) for v in (math.sin(azimuth) * math.cos(elevation), math.cos(azimuth) * math.cos(elevation),
                                   math.sin(elevation))]
    # Unit normal (−∂z/∂x, −∂z/∂y, 1)/|·| dotted with the unit vector towards the sun.
    lit = sun[2] - east * sun[0] - north * sun[1]
    lit /= np.sqrt(np.float32(1.0) + east * east + north * north)
    np.clip(lit, 0.0, None, out=lit)
    lit /= sun[2]
    lit[np.isnan(dem)] = np.nan  # central differences skip the cell itself
    return lit
