"""Serving fcn-edge models from Triton Inference Server.

- :mod:`.model_config`: the Triton model configuration from ModelMeta, checked against
  Triton's own protobuf (:func:`render_config`);
- :mod:`.interface`: what a model file takes and gives, in Triton's terms;
- :mod:`.repository`: ``fcn-edge triton-repo``, a model repository any Triton install serves;
- :mod:`.server`: ``fcn-edge serve``, a real Triton server through PyTriton where none is installed.

The client side is the runtime's ``triton://`` backend (:mod:`fcn_edge.runtime.triton_backend`).
"""

from fcn_edge.serve.model_config import (
    META_PARAMETER, ModelInterface, ServingOptions, TensorSpec, TritonModelConfig, make_config, parse_config,
    render_config,
)
from fcn_edge.serve.repository import RepositoryModel, plan_model, write_model_repository

__all__ = [
    "META_PARAMETER", "ModelInterface", "RepositoryModel", "ServingOptions", "TensorSpec", "TritonModelConfig",
    "make_config", "parse_config", "plan_model", "render_config", "write_model_repository",
]
