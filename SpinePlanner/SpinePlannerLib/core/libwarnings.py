"""Keep library warnings (Python ``warnings``, nibabel's logger, ITK/GDCM) off the terminal.

The command line promises one line on stderr for a bad input; nibabel, numpy, SciPy and ITK
print their own multi-line warnings. :func:`quiet_library_warnings` silences them for a whole
run; :func:`captured_library_warnings` records them instead, so that the planner can keep the
ones that matter as plain lines in ``plan.json`` ``warnings``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import SimpleITK as sitk

LIBRARY_LOGGERS = ("nibabel", "nibabel.global", "pydicom", "dipy")
"""Loggers of libraries that print to stderr through the ``logging`` module."""

DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)
"""Warning categories about library code rather than the case (ResourceWarning: a library left a temporary
folder to the garbage collector): silenced, not recorded."""

MAX_RECORDED = 20
"""At most this many distinct library warnings are kept per run."""


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.sink.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def _redirect_loggers(handler: logging.Handler):
    saved = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate


@contextlib.contextmanager
def _itk_warnings_off():
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


@contextlib.contextmanager
def quiet_library_warnings():
    """Silence Python warnings, the library loggers and ITK warning output inside the block."""
    with warnings.catch_warnings(), _itk_warnings_off(), _redirect_loggers(logging.NullHandler()):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def captured_library_warnings():
    """Record Python warnings and library log warnings raised inside the block.

    Yields a list that receives one plain-text line per distinct warning (``category: message``),
    at most :data:`MAX_RECORDED`. ITK's own warning printing is switched off in the block (the
    planner checks DICOM geometry itself, :mod:`SpinePlannerLib.core.dicom_series`).
    """
    lines: list[str] = []
    handler = _ListHandler(lines)
    with warnings.catch_warnings(record=True) as caught, _itk_warnings_off(), _redirect_loggers(handler):
        warnings.simplefilter("always")
        for category in DEVELOPER_WARNINGS:  # about library code, not about this case
            warnings.simplefilter("ignore", category)
        try:
            yield lines
        finally:
            for w in caught:
                lines.append(f"{w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''}")
            unique = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
            lines[:] = unique[:MAX_RECORDED]
