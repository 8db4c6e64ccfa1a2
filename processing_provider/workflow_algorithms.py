"""The workflow models shipped in workflows/*.model3, offered as algorithms of the provider.

A model's own name() is its display name (spaces and capitals), which would make an unstable
id; WorkflowModel gives each a lower-case id as the plain algorithms have."""
import os

from qgis.core import Qgis, QgsMessageLog, QgsProcessingModelAlgorithm

from .base import GROUPS

WORKFLOWS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workflows")
# id -> file in WORKFLOWS_DIR (written by scripts/build_models.py)
WORKFLOWS = {
    "detectsurfaceactivity": "detect_surface_activity.model3",
    "sbasmineactivity": "sbas_mine_activity.model3",
}


class WorkflowModel(QgsProcessingModelAlgorithm):
    def __init__(self, algorithm_id, path):
        super().__init__()
        self._id, self._path = algorithm_id, path
        if not self.fromFile(path):
            raise OSError(f"{path}: not a readable QGIS model")

    def name(self):
        return self._id

    def displayName(self):  # noqa: N802 (QGIS API)
        return super().name()

    def group(self):
        return GROUPS["workflows"]

    def groupId(self):  # noqa: N802
        return "workflows"

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # QGIS 3.22 hands a step nothing for a model input left out (qgis_process, processing.run),
        # so the step fell back to its own default, not the model's (MIN_COHERENCE 0.3, not 0.7).
        given = dict(parameters)
        for definition in self.parameterDefinitions():
            if (not definition.isDestination() and given.get(definition.name()) is None
                    and definition.defaultValue() is not None):
                given[definition.name()] = definition.defaultValue()
        return super().processAlgorithm(given, context, feedback)

    def createInstance(self):  # noqa: N802
        return WorkflowModel(self._id, self._path)


def workflow_models():
    """The shipped workflows; one that cannot be read is left out with a message in the log, so
    that the provider still loads its algorithms."""
    models = []
    for algorithm_id, file_name in WORKFLOWS.items():
        try:
            models.append(WorkflowModel(algorithm_id, os.path.join(WORKFLOWS_DIR, file_name)))
        except OSError as error:
            QgsMessageLog.logMessage(f"MineSAR workflow minesar:{algorithm_id} left out: {error}", "MineSAR",
                                     Qgis.Warning)
    return models
