"""Progress reporting and cancellation without a dependency on QGIS.

Long loops in core/ take a ``Progress`` and call ``step`` (or ``update``) once per block; the
Processing layer passes one that forwards to ``QgsProcessingFeedback``.
"""
from typing import Callable, Optional

from .errors import Cancelled


class Progress:
    """Fraction-of-work reporter with a cancel check.

    ``callback`` receives a fraction in [0, 1]; ``is_cancelled`` is polled at every update so a
    cancel takes effect within one block. ``span(a, b)`` gives a child whose 0..1 maps onto a..b
    of this one, so nested steps report a single monotone figure.
    """

    def __init__(
        self,
        callback: Optional[Callable[[float], None]] = None,
        is_cancelled: Optional[Callable[[], bool]] = None,
        info: Optional[Callable[[str], None]] = None,
        _start: float = 0.0,
        _end: float = 1.0,
    ):
        self._callback = callback
        self._is_cancelled = is_cancelled
        self._info = info
        self._start = _start
        self._end = _end

    def update(self, fraction: float) -> None:
        """Report progress and raise ``Cancelled`` if the user asked to stop."""
        self.check_cancelled()
        self._report(fraction)

    def finish(self) -> None:
        """Report completion. No cancel check: the result already exists, and stays."""
        self._report(1.0)

    def _report(self, fraction: float) -> None:
        if self._callback is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            self._callback(self._start + (self._end - self._start) * fraction)

    def check_cancelled(self) -> None:
        if self._is_cancelled is not None and self._is_cancelled():
            raise Cancelled()

    def info(self, message: str) -> None:
        if self._info is not None:
            self._info(message)

    def span(self, start: float, end: float) -> "Progress":
        width = self._end - self._start
        return Progress(
            self._callback,
            self._is_cancelled,
            self._info,
            self._start + width * start,
            self._start + width * end,
        )


SILENT = Progress()
