"""What every MineSAR algorithm shares: groups, icon, error translation and progress."""
import contextlib
import os
import traceback

from qgis.core import (
    QgsGeometry,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QIcon

from ..core import environment
from ..core.errors import MineSARError
from ..core.progress import Progress

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "icons", "minesar.svg")

# groupId -> displayed group. The ids are stable: models and scripts refer to them.
GROUPS = {
    "import": "Import and preprocessing",
    "training": "Training data",
    "deformation": "Deformation time series and activity",
    "detection": "Subsidence detection",
    "patches": "Mine patches",
    "workflows": "Workflows",  # the shipped models chaining the algorithms (workflows/*.model3)
}


class MineSARAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set ``_name``, ``_display_name``, ``_group_id`` and ``_help``."""

    _name = ""
    _display_name = ""
    _group_id = ""
    _help = ""

    def name(self):
        return self._name

    def displayName(self):  # noqa: N802 (QGIS API)
        return self._display_name

    def group(self):
        return GROUPS[self._group_id]

    def groupId(self):  # noqa: N802
        return self._group_id

    def shortHelpString(self):  # noqa: N802
        return self._help

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802
        return ICON_PATH

    def createInstance(self):  # noqa: N802
        return type(self)()

    def create_sink(self, parameters, name, context, fields, geometry_type, crs):
        """``parameterAsSink`` that first makes the destination's folder, as raster outputs do, and
        says which output failed instead of returning None."""
        # Read the destination through a scratch copy of the context: on the real one,
        # parameterAsOutputLayer also marks it for loading, and for a temporary output that name
        # ("memory:…") is not the layer the sink makes, so QGIS reported it "not correctly generated".
        scratch = QgsProcessingContext()
        scratch.copyThreadSafeSettings(context)
        destination = self.parameterAsOutputLayer(parameters, name, scratch) or ""
        folder = os.path.dirname(destination)
        if folder and ":" not in destination.split("/")[0] and not os.path.isdir(folder):
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as error:
                raise QgsProcessingException(f"{name}: cannot create the folder {folder} ({error}).") from error
        sink, sink_id = self.parameterAsSink(parameters, name, context, fields, geometry_type, crs)
        if sink is None:
            raise QgsProcessingException(f"{name}: the layer {destination} could not be created.")
        return sink, sink_id


# Processing keeps only a reference to a layer post-processor; Python must keep the object alive
# until QGIS has loaded the layer, which happens after the algorithm has returned.
_STYLERS = {}


class _LayerStyler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, name, style):
        super().__init__()
        self.name, self.style = name, style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if layer is not None and layer.isValid():
            if self.name:
                layer.setName(self.name)
            self.style(layer)


def style_when_loaded(context, layer_id, name, style) -> None:
    """Name an output and apply ``style(layer)`` when QGIS loads it into the project (if it does)."""
    if layer_id and context.willLoadLayerOnCompletion(layer_id):
        styler = _LayerStyler(name, style)
        _STYLERS[layer_id] = styler
        context.layerToLoadOnCompletionDetails(layer_id).setPostProcessor(styler)


def decision_threshold(algorithm, parameters, name, context, metadata):
    """(threshold, where it came from) for the optional threshold parameter ``name``: the number
    given, else the one stored in the checkpoint's ``metadata`` (models/calibration.py), else 0.5.
    Left empty means absent, None, '' or a NULL variant."""
    from ..models.calibration import METADATA_KEY, threshold_of

    value = parameters.get(name)
    if not (value is None or (isinstance(value, str) and not value.strip())
            or (isinstance(value, QVariant) and value.isNull())):
        return algorithm.parameterAsDouble(parameters, name, context), "given"
    stored = METADATA_KEY.get(metadata.get("task", "detection"), "score_threshold") in metadata
    return threshold_of(metadata), ("the model's own" if stored
                                    else "the default: this checkpoint carries no calibrated threshold")


def progress_for(feedback) -> Progress:
    """A core ``Progress`` that drives the Processing progress bar and honours Cancel."""
    if feedback is None:
        return Progress()
    return Progress(
        callback=lambda fraction: feedback.setProgress(100.0 * fraction),
        is_cancelled=feedback.isCanceled,
        info=feedback.pushInfo,
    )


def out_of_memory(error) -> str:
    """'gpu' or 'ram' when ``error`` says memory ran out, else ''. PyTorch raises
    torch.cuda.OutOfMemoryError (a RuntimeError, torch ≥ 1.13) or a plain RuntimeError naming
    CUDA, MPS or the CPU allocator; numpy raises MemoryError."""
    if type(error).__name__ == "OutOfMemoryError":
        return "gpu"
    if isinstance(error, MemoryError):
        return "ram"
    if isinstance(error, RuntimeError):
        text = str(error).lower()
        if "out of memory" in text:
            return "gpu" if any(word in text for word in ("cuda", "gpu", "mps", "hip")) else "ram"
        if "defaultcpuallocator" in text or "can't allocate memory" in text:
            return "ram"
    return ""


def out_of_memory_message(error, where: str, algorithm=None) -> str:
    """What to change, naming only parameters ``algorithm`` has (none when it is not given: advice to
    lower a BATCH_SIZE that surface activity does not have would send the user looking for it)."""
    def has(name):
        return algorithm is not None and algorithm.parameterDefinition(name) is not None

    knobs = [name for name in ("BATCH_SIZE", "TILE_SIZE") if has(name)]
    advice = [f"lower {' or '.join(knobs)}"] if knobs else []
    if where == "gpu" and has("DEVICE"):
        advice.append("run on the CPU (DEVICE cpu)")
    if not advice:
        advice.append("free memory or process a smaller raster")
    detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return f"Out of {'GPU ' if where == 'gpu' else ''}memory ({detail}): {', or '.join(advice)}."


def _release_gpu_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing the cache is a courtesy, never a second error
        pass


@contextlib.contextmanager
def user_errors(algorithm=None):
    """Report core errors (bad input, cancel) as QgsProcessingException with the same message, and
    running out of (GPU) memory as what to change, naming ``algorithm``'s BATCH_SIZE, TILE_SIZE and
    DEVICE where it has them (the deep-learning algorithms and SBAS pass ``self``)."""
    try:
        yield
    except MineSARError as error:
        raise QgsProcessingException(str(error)) from error
    except Exception as error:  # noqa: BLE001 - anything but running out of memory goes on unchanged
        where = out_of_memory(error)
        if not where:
            raise
        # The failed run's frames still hold its tensors: clear them, so that emptying the cache
        # gives the memory back to QGIS (which keeps a failed algorithm's exception).
        traceback.clear_frames(error.__traceback__)
        _release_gpu_memory()
        raise QgsProcessingException(out_of_memory_message(error, where, algorithm)) from None


def qgis_geometry(geometry):
    """A shapely geometry as a QgsGeometry (3.22's fromWkb is an instance method)."""
    result = QgsGeometry()
    result.fromWkb(geometry.wkb)
    return result


def require_torch(task: str) -> None:
    """A clear error, with the command that installs them, when the deep-learning steps cannot run.
    QGIS desktop runs the system Python, which often lacks PyTorch."""
    missing = environment.torch_import_error()
    if missing is not None:
        raise QgsProcessingException(f"{task} needs PyTorch and torchvision ({missing}); "
                                     f"{environment.torch_install_advice()}")
