"""Interferogram preprocessing before detection: Goldstein–Werner filtering, multilooking,
coherence estimation, phase residues and rasmph-style rendering.

Every step reads its input in full-width strips with a halo of neighbouring rows, so a raster far
larger than memory is processed with the same result as if it were read whole, and writes its
output through ``AtomicGeoTiff``.
"""
