"""Training's own error type: a run that cannot go on as configured."""

from __future__ import annotations

from fcn_edge.errors import FcnEdgeError


class TrainingError(FcnEdgeError):
    """Training diverged or cannot run on the device asked for."""
