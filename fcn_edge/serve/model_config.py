"""A Triton model configuration from ModelMeta, written through Triton's own protobuf.

:class:`TritonModelConfig` is one value: the tensors (names, dtypes and dims from ModelMeta,
checked against the model file), batching (``max_batch_size`` from the engine profile or the
ONNX's batch dimension, dynamic batching with preferred sizes and a queue delay), instances,
and ModelMeta itself as the config parameter :data:`META_PARAMETER`, so a client fetches
classes, palette and sizes from the server. ``fcn-edge triton-repo`` renders it to
``config.pbtxt``; ``fcn-edge serve`` hands the same value to PyTriton.

:func:`render_config` builds the ``model_config_pb2.ModelConfig`` message that tritonclient
ships, checks what Triton checks when it loads a model (:func:`config_problems`), and parses
the text back before anyone writes it: a config Triton would reject is never produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from fcn_edge.artifacts import ModelMeta
from fcn_edge.artifacts.dtypes import TRITON_TYPES
from fcn_edge.errors import MetaError, UsageError
from fcn_edge.runtime.triton_backend import META_PARAMETER

ONNX_PLATFORM = "onnxruntime_onnx"
TENSORRT_PLATFORM = "tensorrt_plan"
MODEL_FILES = {ONNX_PLATFORM: "model.onnx", TENSORRT_PLATFORM: "model.plan"}
INSTANCE_KINDS = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
ACCELERATORS = ("none", "tensorrt")
# ONNX Runtime's TensorRT provider precision (Triton onnxruntime_backend's precision_mode)
ACCELERATOR_PRECISION = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}
DEFAULT_QUEUE_DELAY_US = 500
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def model_name_for(stem: str) -> str:
    """A Triton model name from a file stem: letters, digits, '_' and '-' only."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")
    if not name:
        raise UsageError(f"cannot make a Triton model name from {stem!r}; give one with --name")
    return name


@dataclass(frozen=True)
class TensorSpec:
    """One input or output. ``dims`` are per batch item when the model batches (Triton's
    convention), else the whole shape; -1 is a dimension of any size."""

    name: str
    dtype: str  # numpy name
    dims: Tuple[int, ...]


@dataclass(frozen=True)
class ModelInterface:
    """What goes in and out, and how many items one execution takes (0: no batching; the
    dims then hold the whole shape, batch included)."""

    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    max_batch_size: int
    opt_batch: int = 1  # the engine profile's "opt" batch: a batch size the model is tuned for


@dataclass(frozen=True)
class ServingOptions:
    """What the user chooses about serving; None means: from the model.

    ``max_batch`` caps Triton's ``max_batch_size`` (never above what the model takes);
    ``preferred_batch`` the dynamic batcher's preferred sizes (default: the max, and the
    engine profile's opt batch); ``queue_delay_us`` how long the batcher waits for more
    requests; ``instances`` model copies per device; ``instance_kind`` auto|gpu|cpu (an
    engine is always gpu); ``accelerator`` 'tensorrt' adds ONNX Runtime's TensorRT provider
    for GPU instances of an ONNX model.
    """

    max_batch: Optional[int] = None
    preferred_batch: Optional[Tuple[int, ...]] = None
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: int = 1
    instance_kind: str = "auto"
    gpus: Tuple[int, ...] = ()
    accelerator: str = "none"

    def __post_init__(self) -> None:
        if self.max_batch is not None and self.max_batch < 0:
            raise UsageError(f"max_batch {self.max_batch} must be >= 0 (0: no batching)")
        if self.preferred_batch is not None and any(b < 1 for b in self.preferred_batch):
            raise UsageError(f"preferred batch sizes {list(self.preferred_batch)} must be >= 1")
        if self.queue_delay_us < 0:
            raise UsageError(f"queue delay {self.queue_delay_us} us must be >= 0")
        if self.instances < 1:
            raise UsageError(f"instances {self.instances} must be >= 1")
        if self.instance_kind not in INSTANCE_KINDS:
            raise UsageError(f"instance kind {self.instance_kind!r} is not one of {', '.join(INSTANCE_KINDS)}")
        if self.accelerator not in ACCELERATORS:
            raise UsageError(f"accelerator {self.accelerator!r} is not one of {', '.join(ACCELERATORS)}")
        if any(g < 0 for g in self.gpus):
            raise UsageError(f"GPU indices {list(self.gpus)} must be >= 0")


@dataclass(frozen=True)
class TritonModelConfig:
    """One model's Triton configuration; ``platform`` '' with ``backend`` 'python' is
    PyTriton's model (fcn-edge serve), which writes its own config from the same fields."""

    name: str
    interface: ModelInterface
    meta: ModelMeta
    platform: str = ""
    backend: str = ""
    preferred_batch: Tuple[int, ...] = ()
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: int = 1
    instance_kind: str = "auto"
    gpus: Tuple[int, ...] = ()
    accelerator: Dict[str, str] = field(default_factory=dict)  # ORT TensorRT provider parameters

    @property
    def max_batch_size(self) -> int:
        return self.interface.max_batch_size

    @property
    def model_file(self) -> str:
        return MODEL_FILES.get(self.platform, "")

    @property
    def parameters(self) -> Dict[str, str]:
        """The config's string parameters: ModelMeta as JSON."""
        return {META_PARAMETER: self.meta.to_json()}


def preferred_sizes(max_batch_size: int, opt_batch: int = 1) -> Tuple[int, ...]:
    """The max batch, and the engine profile's opt batch when it is larger than 1.

    Triton's batcher sends a batch as soon as the requests waiting make a preferred size, so
    small preferred sizes cut batches short: with [2, 4], four cameras in step were served
    as two batches of 2 every time (tools/bench_triton.py). With [4] the batcher waits up to
    the queue delay for all four, then sends what it has."""
    if max_batch_size < 2:
        return ()
    sizes = {max_batch_size}
    if 1 < opt_batch < max_batch_size:
        sizes.add(opt_batch)
    return tuple(sorted(sizes))


def make_config(name: str, platform: str, interface: ModelInterface, meta: ModelMeta,
                options: ServingOptions = ServingOptions(), backend: str = "") -> TritonModelConfig:
    """Apply the user's ``options`` to what the model takes; refuse what it cannot take."""
    max_batch = interface.max_batch_size
    if options.max_batch is not None:
        if max_batch == 0 and options.max_batch > 0:
            raise MetaError(
                f"{name}: the model has a fixed batch dimension, so Triton cannot batch requests for it "
                f"(--max-batch {options.max_batch}); export it with a dynamic batch to batch"
            )
        if options.max_batch > max_batch:
            raise MetaError(
                f"{name}: --max-batch {options.max_batch} is more than the model takes ({max_batch}); "
                "build the engine (or export) with a larger max batch"
            )
        if options.max_batch == 0 and max_batch > 0:
            raise UsageError(f"{name}: --max-batch 0 would turn batching off for a model whose batch "
                             "dimension is dynamic; leave it out, or give 1")
        interface = ModelInterface(interface.inputs, interface.outputs, options.max_batch,
                                   min(interface.opt_batch, options.max_batch))
        max_batch = options.max_batch
    preferred = options.preferred_batch
    if preferred is None:
        preferred = preferred_sizes(max_batch, interface.opt_batch)
    elif any(b > max_batch for b in preferred):
        raise UsageError(f"{name}: preferred batch sizes {list(preferred)} exceed max batch {max_batch}")
    kind = options.instance_kind
    if platform == TENSORRT_PLATFORM:
        if kind == "cpu":
            raise UsageError(f"{name}: a TensorRT engine runs on a GPU only; instance kind cpu is for ONNX models")
        kind = "gpu"
    accelerator: Dict[str, str] = {}
    if options.accelerator == "tensorrt":
        if platform != ONNX_PLATFORM:
            raise UsageError(f"{name}: the TensorRT accelerator applies to ONNX models (an engine is TensorRT already)")
        if kind == "cpu":
            raise UsageError(f"{name}: the TensorRT accelerator runs on GPU instances; drop --instance-kind cpu")
        accelerator = accelerator_parameters(meta, interface)
    return TritonModelConfig(
        name=name, interface=interface, meta=meta, platform=platform, backend=backend,
        preferred_batch=tuple(sorted(set(preferred))), queue_delay_us=options.queue_delay_us,
        instances=options.instances, instance_kind=kind, gpus=tuple(options.gpus), accelerator=accelerator,
    )


def accelerator_parameters(meta: ModelMeta, interface: ModelInterface) -> Dict[str, str]:
    """ONNX Runtime's TensorRT provider in Triton's onnxruntime backend: the ONNX's own
    precision (Q/DQ INT8 needs no calibration table), engines cached across restarts, and
    the optimisation profile from the meta's size range, so no request outside it rebuilds."""
    low, opt, high = meta.size_range
    batch_hi = max(1, interface.max_batch_size)
    batch_opt = max(1, min(interface.opt_batch, batch_hi))

    def shape(batch: int, size: Tuple[int, int]) -> str:
        return f"{meta.input_name}:" + "x".join(str(d) for d in meta.input_shape(batch, size))

    return {
        "precision_mode": ACCELERATOR_PRECISION[meta.precision],
        "trt_engine_cache_enable": "1",
        "trt_profile_min_shapes": shape(1, low),
        "trt_profile_opt_shapes": shape(batch_opt, opt),
        "trt_profile_max_shapes": shape(batch_hi, high),
    }


# -- protobuf ------------------------------------------------------------------------------
def _pb():
    from fcn_edge.optional import require

    return require("tritonclient.grpc.model_config_pb2", "writing Triton model configurations")


def to_proto(config: TritonModelConfig) -> Any:
    """The ``model_config_pb2.ModelConfig`` message of ``config``."""
    pb = _pb()
    message = pb.ModelConfig(name=config.name, max_batch_size=config.max_batch_size)
    if config.platform:
        message.platform = config.platform
    if config.backend:
        message.backend = config.backend
    if config.model_file:
        message.default_model_filename = config.model_file
    for specs, add in ((config.interface.inputs, message.input.add), (config.interface.outputs, message.output.add)):
        for spec in specs:
            tensor = add()
            tensor.name = spec.name
            tensor.data_type = pb.DataType.Value(TRITON_TYPES.get(spec.dtype, "TYPE_INVALID"))
            tensor.dims.extend(spec.dims)
    if config.max_batch_size > 0:
        batching = message.dynamic_batching
        batching.preferred_batch_size.extend(config.preferred_batch)
        batching.max_queue_delay_microseconds = config.queue_delay_us
    group = message.instance_group.add()
    group.count = config.instances
    group.kind = pb.ModelInstanceGroup.Kind.Value(INSTANCE_KINDS[config.instance_kind])
    group.gpus.extend(config.gpus)
    if config.accelerator:
        accelerator = message.optimization.execution_accelerators.gpu_execution_accelerator.add()
        accelerator.name = "tensorrt"
        for key, value in config.accelerator.items():
            accelerator.parameters[key] = value
    for key, value in config.parameters.items():
        message.parameters[key].string_value = value
    return message


def config_problems(message: Any) -> List[str]:
    """What Triton would refuse in a ModelConfig message when loading it (the checks of its
    model-config validation that apply to the models fcn-edge writes)."""
    pb = _pb()
    problems: List[str] = []
    if not _NAME.match(message.name or ""):
        problems.append(f"model name {message.name!r} must be letters, digits, '.', '_' or '-'")
    if not message.platform and not message.backend:
        problems.append("neither platform nor backend is set")
    if message.max_batch_size < 0:
        problems.append(f"max_batch_size {message.max_batch_size} must be >= 0")
    names = set()
    for role, tensors in (("input", message.input), ("output", message.output)):
        if not tensors:
            problems.append(f"the model has no {role}")
        for tensor in tensors:
            if not tensor.name:
                problems.append(f"an {role} has no name")
            elif tensor.name in names:
                problems.append(f"tensor name {tensor.name!r} is used twice")
            names.add(tensor.name)
            if tensor.data_type in (pb.TYPE_INVALID, pb.TYPE_STRING):
                problems.append(f"{role} {tensor.name!r} has no usable data type")
            if not tensor.dims:
                problems.append(f"{role} {tensor.name!r} has no dims")
            if any(d == 0 or d < -1 for d in tensor.dims):
                problems.append(f"{role} {tensor.name!r} dims {list(tensor.dims)}: each must be -1 or > 0")
    if message.HasField("dynamic_batching"):
        batching = message.dynamic_batching
        if message.max_batch_size < 1:
            problems.append("dynamic_batching needs max_batch_size >= 1")
        bad = [b for b in batching.preferred_batch_size if b < 1 or b > message.max_batch_size]
        if bad:
            problems.append(f"preferred_batch_size {bad} must be within 1..max_batch_size ({message.max_batch_size})")
    for group in message.instance_group:
        if group.count < 1:
            problems.append(f"instance_group count {group.count} must be >= 1")
        if message.platform == TENSORRT_PLATFORM and group.kind == pb.ModelInstanceGroup.KIND_CPU:
            problems.append("a tensorrt_plan model cannot have KIND_CPU instances")
    meta = message.parameters.get(META_PARAMETER)
    if meta is None:
        problems.append(f"parameter {META_PARAMETER!r} (ModelMeta) is missing")
    else:
        try:
            ModelMeta.from_json(meta.string_value, f"parameter {META_PARAMETER}")
        except MetaError as exc:
            problems.append(str(exc))
    return problems


def render_config(config: TritonModelConfig) -> str:
    """``config.pbtxt`` text, checked and parsed back; MetaError listing every problem."""
    from google.protobuf import text_format

    message = to_proto(config)
    problems = config_problems(message)
    if problems:
        raise MetaError(f"{config.name}: Triton would reject this model config: " + "; ".join(problems))
    text = text_format.MessageToString(message)
    if parse_config(text, config.name) != message:  # what Triton reads is what was meant
        raise MetaError(f"{config.name}: the model config does not read back as written")
    return text


def parse_config(text: str, source: str = "config.pbtxt") -> Any:
    """A ``config.pbtxt`` as a ModelConfig message; MetaError naming the source when it is
    not valid text format for Triton's protobuf."""
    from google.protobuf import text_format

    pb = _pb()
    try:
        return text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as exc:
        raise MetaError(f"{source}: not a valid Triton model config: {exc}") from exc


def interface_from_meta(meta: ModelMeta, max_batch_size: int, output_dims: Optional[Sequence[int]] = None) -> ModelInterface:
    """Tensors as ModelMeta describes them (spatial dims -1 for a dynamic-shape model);
    ``output_dims`` (per item) where the model file says more than the meta."""
    h, w = (-1, -1) if meta.dynamic_shape else meta.input_size
    item = meta.input_shape(1, (h, w))[1:]
    if output_dims is None:
        output_dims = (h, w) if meta.fused_argmax else (meta.num_classes, h, w)
    if max_batch_size == 0:  # no batching: the whole shape, batch included
        item = (1,) + tuple(item)
        output_dims = (1,) + tuple(output_dims)
    return ModelInterface(
        (TensorSpec(meta.input_name, meta.input_dtype, tuple(item)),),
        (TensorSpec(meta.output_name, meta.output_dtype, tuple(output_dims)),),
        max_batch_size,
    )
