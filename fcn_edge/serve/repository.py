"""``fcn-edge triton-repo``: a Triton model repository from fcn-edge models, file -> folder.

::

    repo/
      NAME/
        config.pbtxt        platform, tensors, batching, instances, ModelMeta parameter
        1/model.plan        a TensorRT engine (tensorrt_plan), or
        1/model.onnx        an ONNX (onnxruntime_onnx)

Every model's config is made and checked before anything is written, and each model folder
is assembled under a temporary name and renamed into place, so a failure leaves the
repository as it was. A fused model takes uint8 frames and returns a uint8 mask: Triton
needs no Python pre/post-processing model in front of it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from fcn_edge.artifacts import check_engine_file, model_kind, read_engine_sidecar, read_onnx_meta
from fcn_edge.errors import MetaError, UsageError
from fcn_edge.paths import PathLike
from fcn_edge.serve.interface import model_interface
from fcn_edge.serve.model_config import (
    ONNX_PLATFORM, TENSORRT_PLATFORM, ServingOptions, TritonModelConfig, make_config, model_name_for, render_config,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "config.pbtxt"
VERSION = 1


@dataclass(frozen=True)
class RepositoryModel:
    """One model of a repository: where it came from, its config and the notes for the user."""

    source: Path
    config: TritonModelConfig
    config_text: str
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.config.name

    def directory(self, repository: Path) -> Path:
        return Path(repository) / self.name


def plan_model(path: PathLike, options: ServingOptions = ServingOptions(), name: Optional[str] = None) -> RepositoryModel:
    """The config of one model file (engine with its sidecar, or ONNX), checked, not written."""
    path = Path(path)
    if not path.is_file():
        raise MetaError(f"{path}: no such model file")
    kind = model_kind(path).require(
        "engine", "onnx", purpose="a Triton repository serves TensorRT engines and ONNX models",
        hint="export a checkpoint to ONNX first with `fcn-edge export` (or serve it with `fcn-edge serve`)",
    ).kind
    notes: List[str] = []
    if kind == "engine":
        meta, record = read_engine_sidecar(path)
        check_engine_file(path, record)
        platform = TENSORRT_PLATFORM
        notes.append(
            f"engine built with TensorRT {record.tensorrt_version} for {record.gpu_name} (compute "
            f"{record.compute_capability}): serve it from a Triton release with the same TensorRT version, "
            "on the same GPU model"
        )
    else:
        meta, record = read_onnx_meta(path), None
        platform = ONNX_PLATFORM
    interface = model_interface(path, kind, meta, record)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    config = make_config(name or model_name_for(stem), platform, interface, meta, options)
    if interface.max_batch_size == 0:
        notes.append("the model's batch dimension is fixed: Triton does not batch its requests")
    return RepositoryModel(path, config, render_config(config), tuple(notes))


def write_model_repository(
    models: Sequence[PathLike],
    repository: PathLike,
    options: ServingOptions = ServingOptions(),
    names: Optional[Sequence[str]] = None,
    overwrite: bool = False,
) -> List[RepositoryModel]:
    """Write each model into ``repository/NAME/`` (config.pbtxt and 1/model.plan|onnx).

    ``names`` one per model (default: the file stems). A model folder that exists already is
    an error unless ``overwrite``; then it is replaced whole.
    """
    if not models:
        raise UsageError("no model given")
    if names is not None and len(names) != len(models):
        raise UsageError(f"{len(names)} name(s) for {len(models)} model(s): give one --name per model")
    repository = Path(repository)
    planned = [plan_model(m, options, names[i] if names else None) for i, m in enumerate(models)]
    seen = {}
    for model in planned:
        if model.name in seen:
            raise UsageError(f"{seen[model.name]} and {model.source} would both be model {model.name!r}; "
                             "name them with --name")
        seen[model.name] = model.source
        target = model.directory(repository)
        if target.exists() and not overwrite:
            raise UsageError(f"{target} exists; pass --force to replace it")
    repository.mkdir(parents=True, exist_ok=True)
    for model in planned:
        _write_model(model, repository)
    return planned


def _write_model(model: RepositoryModel, repository: Path) -> None:
    """Assemble the model folder under a temporary name, then rename it into place."""
    target = model.directory(repository)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}.", suffix=".tmp", dir=str(repository)))
    try:
        (staging / CONFIG_FILE).write_text(model.config_text)
        version = staging / str(VERSION)
        version.mkdir()
        shutil.copyfile(model.source, version / model.config.model_file)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; a server in a container runs as another user
        old = None
        if target.exists():
            old = target.with_name(f".{model.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.debug("wrote %s", target)
