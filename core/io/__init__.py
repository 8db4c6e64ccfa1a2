"""Readers and writers: GAMMA binaries and parameter files, GDAL rasters by windows, rasmph
colours, LiCSAR/HyP3 conventions and GF-2 orthophotos."""
