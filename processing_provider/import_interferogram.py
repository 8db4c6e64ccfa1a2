"""minesar:importinterferogram: any supported interferogram file → a styled float32 GeoTIFF (or a
complex one with KEEP_COMPLEX)."""
import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..core.importer import import_interferogram
from ..core.io.interferogram import KINDS, open_interferogram
from ..ui.styles import style_interferogram
from ..ui.temporal import with_temporal
from .base import MineSARAlgorithm, progress_for, style_when_loaded, user_errors

KIND_OPTIONS = ("auto",) + KINDS
FILE_FILTER = (
    "Interferograms (*.int *.diff *.diff_filt *.flt *.filt *.adf *.unw *.cc *.cor *.coh *.tif *.tiff "
    "*.vrt *.img *.png *.jpg);;GAMMA binaries (*.int *.diff *.diff_filt *.unw *.cc *.cor);;"
    "GeoTIFF (*.tif *.tiff);;All files (*)"
)

class ImportInterferogramAlgorithm(MineSARAlgorithm):
    _name = "importinterferogram"
    _display_name = "Import interferogram"
    _group_id = "import"
    _help = (
        "Imports an interferogram, unwrapped interferogram or coherence raster as a float32 GeoTIFF "
        "in radians (coherence 0–1) with NaN as nodata, its CRS and geotransform, and metadata that "
        "the other MineSAR steps read: kind, acquisition dates, wavelength, incidence and heading.\n\n"
        "<b>Formats</b>: GAMMA binaries (.int/.diff/.diff_filt complex big-endian; .unw/.cc float "
        "big-endian) with the width from the .off, .diff_par, .mli.par or DEM/map par of the same "
        "grid (found next to the file, or given as PAR); geocoding from the DEM/map par (EQA or UTM). "
        "Any GDAL raster of phase in radians, of complex values (phase = angle), or GAMMA rasmph-"
        "style RGB colours (phase from hue). LiCSAR (*.geo.unw.tif, *.geo.cc.tif) and ASF HyP3 "
        "(*_unw_phase.tif, *_corr.tif) products with their nodata conventions.\n\n"
        "<b>Dates</b> come from the name (YYYYMMDD-YYYYMMDD) or the par's date line; the wavelength "
        "from radar_frequency (λ = c/f), else Sentinel-1 (0.05546576 m).\n\n"
        "<b>KIND</b>: auto decides from metadata, the product's name, the extension, the data type "
        "and lastly the value range. <b>WIDTH</b>/<b>PAR</b> override the grid of a GAMMA binary.\n"
        "<b>KEEP_COMPLEX</b> (advanced): a complex interferogram (GAMMA .int/.diff/.diff_filt, complex "
        "GeoTIFF) is written as a complex (CFloat32) GeoTIFF keeping its amplitude, complex 0 = nodata, "
        "so that multilook averages complex values, estimatecoherence uses |Σz|/Σ|z| and "
        "renderinterferogram can use AMPLITUDE_BRIGHTNESS. A file without amplitudes (phase, "
        "unwrapped, coherence) is imported as float32 as usual, with a warning. QGIS does not display "
        "complex bands; render one with renderinterferogram.\n"
        "The input is read block by block: rasters larger than memory import fine. Batch mode "
        "imports many files at once."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API)
        self.addParameter(
            QgsProcessingParameterFile(
                "INPUT", "Interferogram file", behavior=QgsProcessingParameterFile.File, fileFilter=FILE_FILTER
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "KIND", "What the file holds (by name: auto, wrapped, unwrapped, coherence)",
                options=list(KIND_OPTIONS), defaultValue="auto",
                usesStaticStrings=True,
            )
        )
        advanced = [
            QgsProcessingParameterNumber(
                "WIDTH", "Width in pixels of a GAMMA binary (0 = from its parameter file)",
                type=QgsProcessingParameterNumber.Integer, minValue=0, defaultValue=0, optional=True,
            ),
            QgsProcessingParameterFile(
                "PAR", "GAMMA parameter file of this grid (.off, .diff_par, .mli.par or dem_par)",
                behavior=QgsProcessingParameterFile.File, optional=True,
                fileFilter="GAMMA parameter files (*.par *.off *.diff_par *.dem_par);;All files (*)",
            ),
            QgsProcessingParameterBoolean(
                "ALLOW_PIXEL_COORDINATES", "Import without georeference (pixel coordinates) if there is none",
                defaultValue=False,
            ),
            QgsProcessingParameterBoolean(
                "KEEP_COMPLEX", "Keep a complex interferogram complex (amplitude and phase, CFloat32)",
                defaultValue=False,
            ),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Imported interferogram"))
        self.addOutput(QgsProcessingOutputString("KIND", "Kind"))
        self.addOutput(QgsProcessingOutputString("DATE1", "First date (ISO)"))
        self.addOutput(QgsProcessingOutputString("DATE2", "Second date (ISO)"))
        self.addOutput(QgsProcessingOutputNumber("WAVELENGTH", "Wavelength (m)"))
        self.addOutput(QgsProcessingOutputNumber("VALID_PERCENT", "Valid pixels (%)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        path = self.parameterAsFile(parameters, "INPUT", context)
        if not path:
            raise QgsProcessingException("INPUT: no file given.")
        kind = self.parameterAsEnumString(parameters, "KIND", context) or "auto"
        width = self.parameterAsInt(parameters, "WIDTH", context) or None
        par = self.parameterAsFile(parameters, "PAR", context) or None
        allow = self.parameterAsBool(parameters, "ALLOW_PIXEL_COORDINATES", context)
        keep_complex = self.parameterAsBool(parameters, "KEEP_COMPLEX", context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if os.path.splitext(output)[1].lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(f"OUTPUT {output}: MineSAR writes GeoTIFF; use a .tif name.")

        with user_errors():
            with open_interferogram(path, kind, width, par, allow) as source:
                meta = source.metadata
                feedback.pushInfo(
                    f"{os.path.basename(path)}: {meta.kind} ({meta.kind_reason}), {meta.source_format}, "
                    f"{source.width} × {source.height} px"
                )
                feedback.pushInfo(
                    f"Dates {meta.date1 or '?'} – {meta.date2 or '?'}; wavelength {meta.wavelength_m:.6g} m "
                    f"({meta.wavelength_source})"
                )
                for note in source.notes:
                    feedback.pushWarning(f"{os.path.basename(path)}: {note}")
                if meta.date1 is None or meta.date2 is None:
                    feedback.pushWarning(
                        f"{os.path.basename(path)}: no acquisition pair in the name or parameter files; "
                        "time-series steps will need the dates (name the file YYYYMMDD-YYYYMMDD…)."
                    )
                summary = import_interferogram(source, output, progress_for(feedback), keep_complex=keep_complex)
        if keep_complex and not summary.complex_kept:
            # A warning, not an error: a batch of mixed files (.diff with .unw and .cc) still imports.
            feedback.pushWarning(
                f"{os.path.basename(path)}: KEEP_COMPLEX, but the file holds {meta.kind} values without "
                "amplitudes (not complex); imported as float32 as usual."
            )
        elif summary.complex_kept:
            feedback.pushInfo(f"{os.path.basename(path)}: kept complex (CFloat32, amplitude and phase; 0 = nodata)")
        feedback.pushInfo(
            f"Wrote {output}: {100 * summary.valid_fraction:.2f}% valid, "
            f"{summary.minimum:.4g} … {summary.maximum:.4g}"
        )

        dates = f" {meta.date1:%Y%m%d}–{meta.date2:%Y%m%d}" if meta.date1 and meta.date2 else ""
        # QGIS 3.22 loads a CFloat32 band but reads no values from it (NaN), so no style would show
        # anything; the complex file is an input for the MineSAR steps, not a picture.
        if not summary.complex_kept:
            style_when_loaded(context, output, f"{meta.kind}{dates}" if dates else os.path.basename(path),
                              with_temporal(style_interferogram))

        return {
            "OUTPUT": output,
            "KIND": meta.kind,
            "DATE1": meta.date1.isoformat() if meta.date1 else "",
            "DATE2": meta.date2.isoformat() if meta.date2 else "",
            "WAVELENGTH": meta.wavelength_m,
            "VALID_PERCENT": 100.0 * summary.valid_fraction,
        }
