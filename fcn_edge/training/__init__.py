"""Training: any registry model on any dataset reader, CPU-friendly by default. Needs torch."""

from fcn_edge.training.config import TrainConfig
from fcn_edge.training.loop import TrainResult, poly_factor, train

__all__ = ["TrainConfig", "TrainResult", "poly_factor", "train"]
