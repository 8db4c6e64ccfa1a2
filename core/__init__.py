"""MineSAR's numerical core: numpy, GDAL and scipy only, never qgis.

Everything here can run outside QGIS (tests, benchmarks, a cluster worker); the Processing
algorithms are thin wrappers around it.
"""
