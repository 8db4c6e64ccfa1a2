"""The MineSAR dock: detection, segmentation or mine-patch refinement on one raster layer or many.

The dock only builds parameters. Each layer is one run of the Processing algorithm in a
QgsProcessingAlgRunnerTask, one after the other (two deep-learning runs at once would only share
the same cores), and the results are loaded by Processing's own handleAlgorithmResults, so the
algorithms' names and styles apply exactly as when they run from the toolbox.
"""
import itertools
import os
import re
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapLayerProxyModel,
    QgsMapLayerType,
    QgsMessageLog,
    QgsProcessing,
    QgsProcessingAlgRunnerTask,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
    QgsProject,
)
from qgis.gui import (
    QgsCollapsibleGroupBox,
    QgsDockWidget,
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsSpinBox,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import environment
from ..models import registry
from ..models.checkpoint import shipped_checkpoint

LOG_TAG = "MineSAR"
BROWSE = "\x00browse"  # the model combo's "Browse checkpoint…" entry


@dataclass(frozen=True)
class Task:
    algorithm_id: str
    label: str
    file_tag: str                            # output files: <layer>_<file_tag>[_<output>].<extension>
    networks: Optional[Tuple[str, str]] = None  # (registry task, input kind) of the models it runs


TASKS = (
    Task("minesar:detectsubsidence", "Detect subsidence", "basins", ("detection", "phase")),
    Task("minesar:segmentsubsidence", "Segment subsidence", "subsidence", ("segmentation", "phase")),
    Task("minesar:segmentminepatches", "Segment mine patches", "minepatches", ("segmentation", "optical")),
    Task("minesar:refineminepatches", "Refine mine patches", "refined_patches"),
)
REFINE = "minesar:refineminepatches"  # the task that takes a second layer, the preliminary patches

# The knobs the Advanced section offers, where the chosen algorithm has them; their limits and
# defaults come from the algorithm's own parameter definitions.
TUNING = ("TILE_SIZE", "OVERLAP", "BATCH_SIZE", "SCORE_THRESHOLD", "THRESHOLD", "P_INTSCT", "MIN_AREA", "MIRROR",
          "TURNS")
_SPIN_STEPS = {"TILE_SIZE": 32, "OVERLAP": 16}
_INT_LIMIT = 2 ** 31 - 1

_LAYER_DESTINATIONS = (QgsProcessingParameterFeatureSink, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterVectorDestination)


def shipped_models(task: Task) -> List[str]:
    """Registry names of the networks ``task`` runs that come with weights."""
    if task.networks is None:
        return []
    kind, input_kind = task.networks
    return [name for name in registry.names(kind)
            if registry.input_kind_of(name) == input_kind and shipped_checkpoint(name)]


def file_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "layer"


def output_paths(folder: str, layer_name: str, task: Task, definitions, taken: set) -> dict:
    """Destination parameter -> file in ``folder`` named after the layer and the task, numbered
    rather than overwriting a file that exists (it may be a layer open in the project)."""
    def suffix(definition):  # OUTPUT -> "", OUTPUT_MASK -> "_mask", REPORT -> "_report"
        name = definition.name()
        return (name[len("OUTPUT"):] if name.startswith("OUTPUT") else f"_{name}").lower()

    for number in itertools.count(1):
        stem = file_stem(layer_name) + ("" if number == 1 else f"_{number}")
        paths = {d.name(): os.path.join(folder, f"{stem}_{task.file_tag}{suffix(d)}.{d.defaultFileExtension()}")
                 for d in definitions}
        if not any(os.path.exists(path) or path in taken for path in paths.values()):
            taken.update(paths.values())
            return paths


def user_message(text: str) -> str:
    """An error as a user should read it: a Python traceback goes to the message log, its last line here."""
    text = (text or "").strip()
    if "Traceback (most recent call last)" not in text:
        return text
    QgsMessageLog.logMessage(text, LOG_TAG, Qgis.Critical)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{lines[-1]} (details in the MineSAR message log)" if lines else text


class _DockFeedback(QgsProcessingFeedback):
    """Feedback whose messages reach the dock as queued signals: the algorithm runs in a worker
    thread, and widgets may be touched only from the main one."""

    message = pyqtSignal(str, str, str)  # layer name, level (info, warning, error), text

    def __init__(self, layer_name: str):
        super().__init__()
        self.layer_name = layer_name
        self.errors: List[str] = []  # kept here too: they must not depend on when the signals arrive

    def pushInfo(self, info):  # noqa: N802 (QGIS API)
        super().pushInfo(info)
        self.message.emit(self.layer_name, "info", info)

    def pushWarning(self, warning):  # noqa: N802
        super().pushWarning(warning)
        self.message.emit(self.layer_name, "warning", warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        super().reportError(error, fatalError)
        self.errors.append(user_message(error))
        self.message.emit(self.layer_name, "error", self.errors[-1])


@dataclass
class _Settings:
    """What Run read from the dock; a batch keeps it even if the widgets change meanwhile."""

    task: Task
    values: dict           # MODEL, DEVICE, tuning numbers, PRELIMINARY, REFERENCE
    folder: str            # "" for temporary outputs
    taken: set = field(default_factory=set)


@dataclass
class _Job:
    """One algorithm run on one layer, and what must outlive the task."""

    layer_name: str
    algorithm: object
    context: object
    feedback: _DockFeedback
    task: object


class MineSARDock(QgsDockWidget):
    """Pick rasters, a task, a model and a device; Run runs the task's Processing algorithm on each."""

    def __init__(self, iface, parent=None):
        super().__init__("MineSAR", parent)
        self.setObjectName("MineSARDock")
        self.iface = iface
        self.project = QgsProject.instance()
        self.algorithms = [QgsApplication.processingRegistry().algorithmById(task.algorithm_id) for task in TASKS]
        if None in self.algorithms:
            raise RuntimeError("The MineSAR dock needs the minesar Processing provider: register it first "
                               "(the plugin's initProcessing).")
        self.torch_error = environment.torch_import_error()
        self.browsed = {task.algorithm_id: [] for task in TASKS}  # checkpoints chosen per task
        self._model_index = 0
        self._queue = deque()
        self._job: Optional[_Job] = None
        self._settings: Optional[_Settings] = None
        self._cancel_requested = False
        self._counts = {}
        self._last_error = ""

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._build_torch_notice())
        layout.addWidget(self._build_layer_box())
        layout.addLayout(self._build_task_row())
        layout.addWidget(self._build_refine_box())
        layout.addWidget(self._build_model_box())
        layout.addWidget(self._build_advanced_box())
        layout.addWidget(self._build_output_box())
        layout.addLayout(self._build_run_row())
        layout.addWidget(self._build_log())
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.project.layersAdded.connect(self._layers_added)
        self.project.layersRemoved.connect(self._layers_removed)
        self._layers_added(self.project.mapLayers().values())
        self._task_changed()

    # ------------------------------------------------------------------ construction

    def _build_torch_notice(self):
        self.torch_label = QLabel()
        self.torch_label.setWordWrap(True)
        self.torch_label.setTextFormat(Qt.PlainText)  # the command holds "<" (numpy<2)
        self.torch_label.setTextInteractionFlags(Qt.TextSelectableByMouse)  # so the command can be copied
        self.torch_label.setStyleSheet("color: #b35900;")
        if self.torch_error is not None:
            self.torch_label.setText(
                f"PyTorch and torchvision are missing ({self.torch_error}), so detection and segmentation "
                f"cannot run (refining mine patches can); {environment.torch_install_advice()}")
        self.torch_label.setVisible(self.torch_error is not None)
        return self.torch_label

    def _build_layer_box(self):
        box = QGroupBox("Input rasters")
        self.layer_list = QListWidget()
        self.layer_list.itemChanged.connect(self._update_state)
        self.select_all_button = QPushButton("All")
        self.select_none_button = QPushButton("None")
        self.select_all_button.clicked.connect(lambda: self.set_all_checked(True))
        self.select_none_button.clicked.connect(lambda: self.set_all_checked(False))
        self.checked_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.select_all_button)
        row.addWidget(self.select_none_button)
        row.addStretch()
        row.addWidget(self.checked_label)
        layout = QVBoxLayout(box)
        layout.addWidget(self.layer_list)
        layout.addLayout(row)
        return box

    def _build_task_row(self):
        self.task_combo = QComboBox()
        for task, algorithm in zip(TASKS, self.algorithms):
            self.task_combo.addItem(task.label, task.algorithm_id)
            self.task_combo.setItemData(self.task_combo.count() - 1, algorithm.shortHelpString(), Qt.ToolTipRole)
        self.task_combo.currentIndexChanged.connect(self._task_changed)
        row = QFormLayout()
        row.addRow("Task", self.task_combo)
        return row

    def _build_refine_box(self):
        self.refine_box = QGroupBox("Mine patches to refine")
        self.preliminary_combo = QgsMapLayerComboBox()
        self.preliminary_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer | QgsMapLayerProxyModel.RasterLayer)
        self.preliminary_combo.setToolTip("Preliminary patches: polygons, or a mask raster where non-zero = mine "
                                          "(e.g. from Segment mine patches).")
        self.preliminary_combo.layerChanged.connect(self._update_state)
        self.reference_combo = QgsMapLayerComboBox()
        self.reference_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.reference_combo.setAllowEmptyLayer(True)
        self.reference_combo.setLayer(None)
        self.reference_combo.setToolTip("Optional reference patches that calibrate the p_intsct threshold.")
        form = QFormLayout(self.refine_box)
        form.addRow("Preliminary patches", self.preliminary_combo)
        form.addRow("Reference (optional)", self.reference_combo)
        return self.refine_box

    def _build_model_box(self):
        self.model_box = QGroupBox("Network")
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)  # long paths
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto (CUDA when present)", "auto")
        self.device_combo.addItem("cpu", "cpu")
        gpus = self._cuda_devices()
        for index, name in enumerate(gpus):
            self.device_combo.addItem(f"cuda:{index} — {name}", f"cuda:{index}")
        self.cuda_label = QLabel(f"CUDA available: {', '.join(gpus)}" if gpus
                                 else "CUDA not available — running on CPU")
        self.cuda_label.setWordWrap(True)
        self.cuda_label.setVisible(self.torch_error is None)
        form = QFormLayout(self.model_box)
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow(self.cuda_label)
        return self.model_box

    def _cuda_devices(self) -> List[str]:
        if self.torch_error is not None:
            return []
        try:
            from ..models.device import cuda_device_names

            return cuda_device_names()
        except Exception as error:  # noqa: BLE001 (a broken CUDA setup must not stop the dock)
            QgsMessageLog.logMessage(f"CUDA devices could not be listed: {error}", LOG_TAG, Qgis.Warning)
            return []

    def _build_advanced_box(self):
        box = QgsCollapsibleGroupBox("Advanced")
        box.setCollapsed(True)
        self.tuning_pages = QStackedWidget()
        self.tuning_widgets = []  # per task: {parameter name: spin box}
        for algorithm in self.algorithms:
            page = QWidget()
            form = QFormLayout(page)
            widgets = {}
            for name in TUNING:
                definition = algorithm.parameterDefinition(name)
                if isinstance(definition, QgsProcessingParameterBoolean):
                    widgets[name] = QCheckBox()
                    widgets[name].setChecked(bool(definition.defaultValue()))
                elif isinstance(definition, QgsProcessingParameterNumber):
                    widgets[name] = _number_widget(definition)
                else:
                    continue
                label = QLabel(definition.description())
                label.setWordWrap(True)  # some descriptions are long, docks narrow
                form.addRow(label, widgets[name])
            if not widgets:
                form.addRow(QLabel("Nothing to tune for this task."))
            self.tuning_pages.addWidget(page)
            self.tuning_widgets.append(widgets)
        QVBoxLayout(box).addWidget(self.tuning_pages)
        self.advanced_box = box
        return box

    def _build_output_box(self):
        box = QGroupBox("Output")
        self.folder_widget = QgsFileWidget()
        self.folder_widget.setStorageMode(QgsFileWidget.GetDirectory)
        self.folder_widget.setDialogTitle("Folder for the MineSAR outputs")
        self.folder_widget.lineEdit().setPlaceholderText("[Temporary outputs]")
        self.folder_widget.setToolTip("Empty: temporary files. A folder: files named after the input layer and "
                                      "the task, numbered rather than overwriting.")
        form = QFormLayout(box)
        form.addRow("Folder", self.folder_widget)
        return box

    def _build_run_row(self):
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress_bar, 1)
        return row

    def _build_log(self):
        box = QWidget()
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.PlainText)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMinimumHeight(120)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status_label)
        layout.addWidget(self.log)
        return box

    # ------------------------------------------------------------------ layers

    def _layers_added(self, layers):
        for layer in layers:
            # GDAL rasters only: the algorithms read files (a WMS or XYZ layer has none to read).
            is_file_raster = layer.type() == QgsMapLayerType.RasterLayer and layer.providerType() == "gdal"
            if is_file_raster and self._item_of(layer.id()) is None:
                item = QListWidgetItem(layer.name())
                item.setData(Qt.UserRole, layer.id())
                item.setToolTip(layer.source())
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Unchecked)
                self.layer_list.addItem(item)
                layer.nameChanged.connect(self._refresh_layer_names)
        self._update_state()

    def _layers_removed(self, layer_ids):
        for layer_id in layer_ids:
            item = self._item_of(layer_id)
            if item is not None:
                self.layer_list.takeItem(self.layer_list.row(item))
        self._update_state()

    def _refresh_layer_names(self):
        for item in self._items():
            layer = self.project.mapLayer(item.data(Qt.UserRole))
            if layer is not None:
                item.setText(layer.name())

    def _items(self):
        return [self.layer_list.item(row) for row in range(self.layer_list.count())]

    def _item_of(self, layer_id):
        return next((item for item in self._items() if item.data(Qt.UserRole) == layer_id), None)

    def set_all_checked(self, checked: bool) -> None:
        for item in self._items():
            item.setCheckState(Qt.Checked if checked else Qt.Unchecked)

    def set_checked(self, layer, checked: bool = True) -> None:
        self._item_of(layer.id()).setCheckState(Qt.Checked if checked else Qt.Unchecked)

    def checked_layers(self):
        layers = (self.project.mapLayer(item.data(Qt.UserRole)) for item in self._items()
                  if item.checkState() == Qt.Checked)
        return [layer for layer in layers if layer is not None]

    # ------------------------------------------------------------------ task, model, state

    def task(self) -> Task:
        return TASKS[self.task_combo.currentIndex()]

    def algorithm(self):
        return self.algorithms[self.task_combo.currentIndex()]

    def set_task(self, algorithm_id: str) -> None:
        self.task_combo.setCurrentIndex(self.task_combo.findData(algorithm_id))

    def is_refine(self) -> bool:
        return self.task().algorithm_id == REFINE

    def uses_model(self) -> bool:
        return self.algorithm().parameterDefinition("MODEL") is not None

    def _task_changed(self):
        self.refine_box.setVisible(self.is_refine())
        self.model_box.setVisible(self.uses_model())
        self.model_box.setEnabled(self.torch_error is None)
        self.tuning_pages.setCurrentIndex(self.task_combo.currentIndex())
        self._fill_models()
        self._update_state()

    def _fill_models(self):
        task = self.task()
        default = self.algorithm().parameterDefinition("MODEL")
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for name in shipped_models(task):
            self.model_combo.addItem(name, name)
            self.model_combo.setItemData(self.model_combo.count() - 1, shipped_checkpoint(name), Qt.ToolTipRole)
        for path in self.browsed[task.algorithm_id]:
            self.model_combo.addItem(os.path.basename(path), path)
            self.model_combo.setItemData(self.model_combo.count() - 1, path, Qt.ToolTipRole)
        self.model_combo.addItem("Browse checkpoint…", BROWSE)
        wanted = self.model_combo.findData(default.defaultValue()) if default is not None else -1
        self._model_index = max(wanted, 0)
        self.model_combo.setCurrentIndex(self._model_index)
        self.model_combo.blockSignals(False)

    def _model_chosen(self, index):
        if self.model_combo.itemData(index) != BROWSE:
            self._model_index = index
            self._update_state()
            return
        path, _ = QFileDialog.getOpenFileName(self, "MineSAR checkpoint", "", "PyTorch checkpoints (*.pt)")
        if path:
            self.add_checkpoint(path)
        else:
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(self._model_index)
            self.model_combo.blockSignals(False)

    def add_checkpoint(self, path: str) -> None:
        """Offer a checkpoint file for the current task and select it."""
        chosen = self.browsed[self.task().algorithm_id]
        if path not in chosen:
            chosen.append(path)
        self._fill_models()
        self.set_model(path)

    def set_model(self, value: str) -> None:
        self.model_combo.setCurrentIndex(self.model_combo.findData(value))

    def set_device(self, value: str) -> None:
        self.device_combo.setCurrentIndex(self.device_combo.findData(value))

    def model(self) -> Optional[str]:
        value = self.model_combo.currentData()
        return None if value in (None, BROWSE) else value

    def tuning(self) -> dict:
        """The advanced values to pass; a number left at "the model's own" is not passed at all."""
        values = {}
        for name, widget in self.tuning_widgets[self.task_combo.currentIndex()].items():
            if isinstance(widget, QCheckBox):
                values[name] = widget.isChecked()
            elif not _shows_models_own(widget):
                values[name] = widget.value()
        return values

    def tuning_widget(self, name: str):
        return self.tuning_widgets[self.task_combo.currentIndex()][name]

    def is_running(self) -> bool:
        return self._settings is not None

    def _blocker(self) -> Optional[str]:
        """Why Run cannot start now, or None."""
        if self.is_running():
            return "A batch is running."
        if self.uses_model() and self.torch_error is not None:
            return "This task needs PyTorch and torchvision (see above)."
        if not self.checked_layers():
            return "Check at least one raster layer."
        if self.uses_model() and self.model() is None:
            return "Choose a model or a checkpoint."
        if self.is_refine() and self.preliminary_combo.currentLayer() is None:
            return "Choose the preliminary mine patches."
        return None

    def _update_state(self, *_):
        checked, total = len(self.checked_layers()), self.layer_list.count()
        self.checked_label.setText(f"{checked} of {total} checked")
        blocker = self._blocker()
        self.run_button.setEnabled(blocker is None)
        self.run_button.setToolTip(blocker or f"Run {self.task().label.lower()} on the checked layers, one by one.")
        self.cancel_button.setEnabled(self.is_running() and not self._cancel_requested)

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        if self._blocker() is not None:
            return
        values = dict(self.tuning())
        if self.uses_model():
            values.update(MODEL=self.model(), DEVICE=self.device_combo.currentData())
        if self.is_refine():
            values["PRELIMINARY"] = self.preliminary_combo.currentLayer().id()
            if self.reference_combo.currentLayer() is not None:
                values["REFERENCE"] = self.reference_combo.currentLayer().id()
        layers = self.checked_layers()
        self._settings = _Settings(self.task(), values, self.folder_widget.filePath().strip())
        self._queue = deque((layer.id(), layer.name()) for layer in layers)
        self._counts = {"total": len(layers), "done": 0, "failed": 0}
        self._cancel_requested = False
        self.progress_bar.setValue(0)
        self.log.clear()
        self._say("info", f"{self.task().label}: {len(layers)} layer(s).")
        self._update_state()
        self._start_next()

    def cancel(self) -> None:
        if not self.is_running():
            return
        self._cancel_requested = True
        self._queue.clear()
        self._say("warning", "Cancelling…")
        if self._job is not None and not sip.isdeleted(self._job.task):
            self._job.task.cancel()
        self._update_state()

    def unload(self) -> None:
        """Cancels the batch and stops following the project (the plugin calls this before removing
        the dock; a dangling slot would fire on a deleted widget)."""
        self.cancel()
        for signal, slot in ((self.project.layersAdded, self._layers_added),
                             (self.project.layersRemoved, self._layers_removed)):
            try:
                signal.disconnect(slot)
            except TypeError:  # already disconnected
                pass

    def current_task(self):
        """The QgsProcessingAlgRunnerTask running now, if any."""
        return self._job.task if self._job is not None else None

    def _parameters(self, layer, settings: _Settings, algorithm) -> dict:
        parameters = {"INPUT": layer.id(), **settings.values}
        destinations = [d for d in algorithm.destinationParameterDefinitions()
                        if not (d.flags() & d.FlagOptional) or d.createByDefault()]
        paths = (output_paths(settings.folder, layer.name(), settings.task, destinations, settings.taken)
                 if settings.folder else {})
        for definition in destinations:
            target = paths.get(definition.name(), QgsProcessing.TEMPORARY_OUTPUT)
            if isinstance(definition, _LAYER_DESTINATIONS):
                output = QgsProcessingOutputLayerDefinition(target, self.project)
                output.destinationName = f"{layer.name()}: {definition.description()}"
                target = output
            parameters[definition.name()] = target
        return parameters

    def _start_next(self) -> None:
        from processing.tools.dataobjects import createContext

        settings = self._settings
        while self._queue and not self._cancel_requested:
            layer_id, name = self._queue.popleft()
            layer = self.project.mapLayer(layer_id)
            if layer is None:
                self._failed(name, "the layer was removed from the project before its turn.")
                continue
            algorithm = QgsApplication.processingRegistry().createAlgorithmById(settings.task.algorithm_id)
            feedback = _DockFeedback(name)
            feedback.message.connect(self._say_for_layer)
            feedback.progressChanged.connect(self._job_progress)
            context = createContext(feedback)
            parameters = self._parameters(layer, settings, algorithm)
            valid, problem = algorithm.checkParameterValues(parameters, context)
            if not valid:
                self._failed(name, problem)
                continue
            task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
            if task.isCanceled():  # prepare() refused the parameters; the reason is in the feedback
                self._failed(name, "; ".join(feedback.errors) or "the algorithm could not start.", logged=True)
                continue
            task.executed.connect(self._job_executed)
            self._job = _Job(name, algorithm, context, feedback, task)
            self._say("info", f"{name}: started.")
            QgsApplication.taskManager().addTask(task)
            return
        self._finish_batch()

    def _say_for_layer(self, layer_name: str, level: str, text: str) -> None:
        self._say(level, f"{layer_name}: {text}")

    def _job_progress(self, percent: float) -> None:
        if self._settings is None:
            return
        done, total = self._counts["done"], self._counts["total"]
        self.progress_bar.setValue(int(round(100.0 * (done + min(max(percent, 0.0), 100.0) / 100.0) / total)))

    def _job_executed(self, ok: bool, results: dict) -> None:
        job, self._job = self._job, None  # the task manager deletes the task now
        if self._cancel_requested:
            self._say("warning", f"{job.layer_name}: cancelled; nothing loaded.")
        elif ok:
            self._load(job, results)
            self._counts["done"] += 1
            self._say("info", f"{job.layer_name}: done.")
        else:
            self._failed(job.layer_name, "; ".join(job.feedback.errors) or "the algorithm failed (see the log).",
                         logged=bool(job.feedback.errors))
        self._start_next()

    def _load(self, job: _Job, results: dict) -> None:
        """Processing's own loading of the outputs: names, user styles, the algorithm's post-processors."""
        from processing.gui.Postprocessing import handleAlgorithmResults

        added = []

        def collect(layer):
            added.append(layer)

        self.project.layerWasAdded.connect(collect)
        try:
            if not handleAlgorithmResults(job.algorithm, job.context, job.feedback, False, results):
                self._say("warning", f"{job.layer_name}: some outputs could not be loaded.")
        finally:
            self.project.layerWasAdded.disconnect(collect)
        for layer in added:  # in a batch, every input gives a "subsidence basins": say whose
            layer.setName(f"{job.layer_name}: {layer.name()}")

    def _failed(self, name: str, message: str, logged: bool = False) -> None:
        self._counts["done"] += 1
        self._counts["failed"] += 1
        self._last_error = f"{name}: {message}"
        if not logged:  # errors the feedback reported are in the log already
            self._say("error", self._last_error)
        if self.iface is not None and hasattr(self.iface, "messageBar"):
            self.iface.messageBar().pushMessage("MineSAR", f"{name}: {message}", Qgis.Critical, 10)

    def _finish_batch(self) -> None:
        counts, cancelled = self._counts, self._cancel_requested
        self._settings, self._job, self._cancel_requested = None, None, False
        if cancelled:
            status = f"Cancelled after {counts['done']} of {counts['total']} layer(s)."
        else:
            self.progress_bar.setValue(100)
            ok = counts["done"] - counts["failed"]
            status = f"Finished: {ok} of {counts['total']} layer(s) done"
            status += f", {counts['failed']} failed — {self._last_error}" if counts["failed"] else "."
        self.status_label.setText(status)
        self._update_state()

    def _say(self, level: str, text: str) -> None:
        colours = {"warning": "#b35900", "error": "#c00000"}
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.log.appendHtml(f'<span style="color:{colours[level]}">{escaped}</span>' if level in colours
                            else escaped)
        self.status_label.setText(text)


MODELS_OWN = "model's own"


def _shows_models_own(widget) -> bool:
    return bool(widget.specialValueText()) and widget.value() == widget.minimum()


def _number_widget(definition):
    """A spin box with the parameter's limits and default (its clear button restores the default).
    An optional parameter without a default (a threshold the checkpoint carries) gets one step
    below its minimum that reads "model's own", and starts there."""
    name, default = definition.name(), definition.defaultValue()
    if default is None:
        widget = QgsDoubleSpinBox()
        widget.setDecimals(3)
        step = 0.05 if definition.maximum() <= 1.0 else 1.0
        widget.setRange(max(definition.minimum(), -1e12) - step, min(definition.maximum(), 1e12))
        widget.setSingleStep(step)
        widget.setSpecialValueText(MODELS_OWN)
        widget.setMinimumWidth(90)
        widget.setClearValue(widget.minimum())
        widget.setShowClearButton(True)
        widget.setValue(widget.minimum())
        widget.setToolTip(f"{name}; empty: the threshold stored in the model's checkpoint")
        return widget
    if definition.dataType() == QgsProcessingParameterNumber.Integer:
        widget = QgsSpinBox()
        widget.setRange(int(max(definition.minimum(), -_INT_LIMIT)), int(min(definition.maximum(), _INT_LIMIT)))
        widget.setSingleStep(_SPIN_STEPS.get(name, 1))
        default = int(default)
    else:
        widget = QgsDoubleSpinBox()
        widget.setDecimals(3)
        widget.setRange(max(definition.minimum(), -1e12), min(definition.maximum(), 1e12))
        widget.setSingleStep(0.05 if definition.maximum() <= 1.0 else 1.0)
        default = float(default)
    widget.setMinimumWidth(90)  # else the widest value of the range sets the dock's width
    widget.setClearValue(default)
    widget.setShowClearButton(True)
    widget.setValue(default)
    widget.setToolTip(f"{name}; default {default}")
    return widget
