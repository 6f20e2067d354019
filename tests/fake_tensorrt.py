"""FakeTensorRT: a stand-in tensorrt module to test fcn-edge's *own* control flow.

This is a fake, not a model of TensorRT's behaviour: it builds nothing and runs nothing.
It has the API *shape* of a TensorRT release (which classes, enum members and methods
exist, so ``hasattr`` probes answer as on the real one: tests/test_engine_build_fake.py
checks its names against the extracted surfaces), and it records what fcn-edge asked of it.
``build_serialized_network`` returns a JSON "plan" of the requests (network flags, builder
flags, profiles, workspace, DLA, calibration batches) behind the four bytes every real
TensorRT plan starts with (``ftrt``, so :func:`fcn_edge.artifacts.model_kind` calls it an
engine), so tests can assert on them, and the fake runtime deserialises that JSON back into
an engine whose inspector reports layers in the precision that was asked for.
"""

from __future__ import annotations

import json
import types
from typing import Dict, List, Optional, Sequence

import numpy as np

from fcn_edge.engine.cuda_driver import DeviceFacts


class _Member:
    def __init__(self, owner: str, name: str, value: int):
        self.name, self.value, self._owner = name, value, owner

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Member) and (self._owner, self.name) == (other._owner, other.name)

    def __hash__(self) -> int:
        return hash((self._owner, self.name))

    def __repr__(self) -> str:
        return f"{self._owner}.{self.name}"


def _enum(owner: str, names: Sequence[str], values: Optional[Dict[str, int]] = None) -> type:
    attrs = {n: _Member(owner, n, (values or {}).get(n, i)) for i, n in enumerate(names)}
    return type(owner, (), attrs)


# Which release shapes the fake can take. Each differs only where fcn-edge's code branches.
RELEASES = {
    "8.5.2": dict(strongly_typed=False, weak_flags=True, calibrators=True, opt_level=False, node_names=False, fast_fp16=True, dla=True),
    "8.6.1": dict(strongly_typed=False, weak_flags=True, calibrators=True, opt_level=True, node_names=False, fast_fp16=True, dla=True),
    "10.3.0": dict(strongly_typed=True, weak_flags=True, calibrators=True, opt_level=True, node_names=True, fast_fp16=True, dla=True),
    # 10.8 and later 10.x have no DLA ("TensorRT 10.7 was the last 10.x release that supported DLA")
    "10.16.1.11": dict(strongly_typed=True, weak_flags=True, calibrators=True, opt_level=True, node_names=True, fast_fp16=True, dla=False),
    # 11.4.0 has DLA only on Windows on ARM; 11.4.1 on Jetson AGX Orin (JetPack 7.2.2)
    "11.4.0.106": dict(strongly_typed=True, weak_flags=False, calibrators=False, opt_level=True, node_names=True, fast_fp16=False, dla=False),
    "11.4.1": dict(strongly_typed=True, weak_flags=False, calibrators=False, opt_level=True, node_names=True, fast_fp16=False, dla=True),
}

UNSUPPORTED_OPS = {"FakeUnsupportedOp"}
# What TensorRT's engine inspector writes as a layer output's "Format/Datatype", per element
# type (strings as TensorRT prints them; TensorRT Engine Explorer lists them all).
INSPECTOR_FORMATS = {
    "float32": "Row major linear FP32",
    "float16": "Channel major FP16 format where channel % 8 == 0",
    "int8": "Four wide channel vectorized row major Int8 format",
    "uint8": "Row major linear UInt8 format",
    "int32": "Row major linear Int32",
    "int64": "Row major linear Int64 format",
    "bool": "Row major linear BOOL",
    "bfloat16": "Row major linear BFloat16 format",
}
MAGIC = b"ftrt"  # the first bytes of a real TensorRT 8+ plan
DLA_OPS = {"Conv", "Relu", "Add", "Mul", "Sub"}


# 'Device memory' of every FakeDevice, by pointer: the fake builder reads calibration batches
# from it the way TensorRT reads the pointers a calibrator hands it.
DEVICE_MEMORY: Dict[int, np.ndarray] = {}
_next_pointer = [0x1000]


class FakeDevice:
    """GPU facts and 'device memory' (host arrays) for calibrator batches."""

    def __init__(self, name: str = "Orin (fake)", capability=(8, 7)):
        self._facts = DeviceFacts(name, capability)
        self.memory: Dict[int, np.ndarray] = {}
        self.uploads = 0

    def facts(self) -> DeviceFacts:
        return self._facts

    def alloc(self, nbytes: int) -> int:
        pointer = _next_pointer[0]
        _next_pointer[0] += max(nbytes, 1) + 256
        self.memory[pointer] = DEVICE_MEMORY[pointer] = np.zeros(nbytes, np.uint8)
        return pointer

    def upload(self, pointer: int, array: np.ndarray) -> None:
        self.memory[pointer][:] = np.ascontiguousarray(array).view(np.uint8).ravel()
        self.uploads += 1

    def free(self, pointer: int) -> None:
        del self.memory[pointer]
        del DEVICE_MEMORY[pointer]


def make_fake_tensorrt(version: str = "10.3.0", num_dla_cores: int = 0, fast_fp16: bool = True,
                       fast_int8: bool = True) -> types.ModuleType:
    """A module object shaped like TensorRT ``version`` (a key of :data:`RELEASES`)."""
    shape = RELEASES[version]
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.FAKE = True

    network_flags = ["EXPLICIT_BATCH"] if not version.startswith("11") else []
    if shape["strongly_typed"]:
        network_flags.append("STRONGLY_TYPED")
    # 10.x: EXPLICIT_BATCH = 0, STRONGLY_TYPED = 1; 11 removed EXPLICIT_BATCH and its
    # (deprecated, ignored) STRONGLY_TYPED is 0.
    trt.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", network_flags)
    numbers = tuple(int(n) for n in version.split("."))
    builder_flags = ["TF32", "GPU_FALLBACK", "DEBUG", "REFIT"]
    if shape["weak_flags"]:
        builder_flags += ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"]
    if numbers >= (8, 6):  # version and hardware compatibility came with 8.6
        builder_flags += ["VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME"]
        trt.HardwareCompatibilityLevel = _enum(
            "HardwareCompatibilityLevel", ["NONE", "AMPERE_PLUS"] + (["SAME_COMPUTE_CAPABILITY"] if numbers >= (10, 13) else []))
    trt.BuilderFlag = _enum("BuilderFlag", builder_flags)
    trt.OnnxParserFlag = _enum("OnnxParserFlag", ["NATIVE_INSTANCENORM"])
    trt.MemoryPoolType = _enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.DeviceType = _enum("DeviceType", ["GPU", "DLA"])
    trt.ProfilingVerbosity = _enum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "NONE", "DETAILED"])
    trt.LayerInformationFormat = _enum("LayerInformationFormat", ["ONELINE", "JSON"])
    trt.TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.DataType = _enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"])
    severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

    class ILogger:
        Severity = severity

        def __init__(self) -> None:
            pass

    class Logger(ILogger):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (getattr(severity, n) for n in
                                                         ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"))

        def __init__(self, min_severity=None) -> None:
            self.min_severity = min_severity

        def log(self, sev, msg) -> None:
            pass

    trt.ILogger, trt.Logger = ILogger, Logger
    dtype_of = {"float32": trt.DataType.FLOAT, "float16": trt.DataType.HALF, "uint8": trt.DataType.UINT8,
                "int32": trt.DataType.INT32, "int8": trt.DataType.INT8}

    class FakeTensor:
        def __init__(self, name: str, shape, dtype: str):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype_of.get(dtype, trt.DataType.FLOAT)

    class FakeLayer:
        def __init__(self, name: str, op: str, dtype: str = "float32"):
            self.name, self.op, self.dtype = name, op, dtype  # dtype: the ONNX type of its first output

    class FakeNetwork:
        def __init__(self, flags: int):
            self.flags = flags
            self.inputs: List[FakeTensor] = []
            self.outputs: List[FakeTensor] = []
            self.layers: List[FakeLayer] = []
            self.fp16_weights = False
            self.parser_flags: List[str] = []

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> FakeLayer:
            return self.layers[i]

    class ParserError:
        def __init__(self, desc: str, node: int, node_name: str, op: str):
            self._desc, self._node, self._name, self._op = desc, node, node_name, op

        def desc(self) -> str:
            return self._desc

        def node(self) -> int:
            return self._node

        def code(self) -> str:
            return "ErrorCode.UNSUPPORTED_NODE"

    if shape["node_names"]:
        ParserError.node_name = lambda self: self._name
        ParserError.node_operator = lambda self: self._op
    trt.ParserError = ParserError

    class OnnxParser:
        def __init__(self, network: FakeNetwork, logger) -> None:
            self.network, self.errors = network, []

        def set_flag(self, flag) -> None:
            self.network.parser_flags.append(flag.name)

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> ParserError:
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            import onnx

            model = onnx.load(path, load_external_data=False)
            inits = {i.name for i in model.graph.initializer}
            inferred = onnx.shape_inference.infer_shapes(model).graph
            types = {v.name: v.type.tensor_type.elem_type
                     for v in list(inferred.input) + list(inferred.value_info) + list(inferred.output)}
            self.network.fp16_weights = any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
            for index, node in enumerate(model.graph.node):
                if node.op_type in UNSUPPORTED_OPS:
                    self.errors.append(ParserError(
                        f"No importer registered for op: {node.op_type}", index, node.name, node.op_type))
                elem_type = types.get(node.output[0], onnx.TensorProto.FLOAT) if node.output else onnx.TensorProto.FLOAT
                np_type = onnx.helper.tensor_dtype_to_np_dtype(elem_type) if elem_type else np.float32
                dtype = "bfloat16" if elem_type == onnx.TensorProto.BFLOAT16 else str(np.dtype(np_type))
                self.network.layers.append(FakeLayer(node.name, node.op_type, dtype))
            for value in model.graph.input:
                if value.name in inits:
                    continue
                dims = [d.dim_value if d.dim_value > 0 else -1 for d in value.type.tensor_type.shape.dim]
                np_type = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
                self.network.inputs.append(FakeTensor(value.name, dims, str(np.dtype(np_type))))
            for value in model.graph.output:
                dims = [d.dim_value if d.dim_value > 0 else -1 for d in value.type.tensor_type.shape.dim]
                np_type = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
                self.network.outputs.append(FakeTensor(value.name, dims, str(np.dtype(np_type))))
            return not self.errors

    class FakeProfile:
        def __init__(self) -> None:
            self.shapes: Dict[str, List[List[int]]] = {}
            self.rejected = False  # a test's stand-in for whatever makes TensorRT refuse a profile

        def valid_for(self, network_inputs) -> bool:
            """TensorRT's rule: every dynamic input has shapes, of its rank, min <= opt <= max,
            fixed dimensions kept."""
            if self.rejected:
                return False
            for tensor in network_inputs:
                if tensor.name not in self.shapes:
                    if any(d < 0 for d in tensor.shape):
                        return False
                    continue
                low, opt, high = self.shapes[tensor.name]
                if not len(low) == len(opt) == len(high) == len(tensor.shape):
                    return False
                if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
                    return False
                if any(d > 0 and not a == b == c == d for a, b, c, d in zip(low, opt, high, tensor.shape)):
                    return False
            return True

        def set_shape(self, name, min, opt, max) -> None:  # noqa: A002 - TensorRT's names
            self.shapes[name] = [list(min), list(opt), list(max)]

    class FakeTimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = blob or b"fake-timing-cache"

        def serialize(self) -> bytes:
            return self.blob

    class IBuilderConfig:
        def __init__(self) -> None:
            self.network_inputs: List[FakeTensor] = []
            self.flags: List[str] = []
            self.pools: Dict[str, int] = {}
            self.profiles: List[FakeProfile] = []
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.timing_cache: Optional[FakeTimingCache] = None
            self.calibration_profile: Optional[FakeProfile] = None
            self._int8_calibrator = None
            self._opt_level = 3
            if hasattr(trt, "HardwareCompatibilityLevel"):
                self.hardware_compatibility_level = trt.HardwareCompatibilityLevel.NONE

        def set_flag(self, flag) -> None:
            self.flags.append(flag.name)

        def set_memory_pool_limit(self, pool, size: int) -> None:
            self.pools[pool.name] = size

        def add_optimization_profile(self, profile: FakeProfile) -> int:
            """The profile's index, or -1 if it is not valid (TensorRT's documented return)."""
            if not profile.valid_for(self.network_inputs):
                return -1
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, blob: bytes) -> Optional[FakeTimingCache]:
            """None for a blob TensorRT rejects (it logs an error; Polygraphy then starts empty)."""
            blob = bytes(blob)
            if blob and not blob.startswith(b"fake-timing-cache"):
                return None
            return FakeTimingCache(blob)

        def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
            if cache.blob.startswith(b"fake-timing-cache-other-gpu") and not ignore_mismatch:
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> FakeTimingCache:
            return self.timing_cache

        def can_run_on_DLA(self, layer: FakeLayer) -> bool:
            # DLA supports no dynamic dimensions: with a profile whose min != max nothing runs there
            dynamic = any(low != high for p in self.profiles for low, _opt, high in p.shapes.values())
            return layer.op in DLA_OPS and not dynamic

    if shape["opt_level"]:
        IBuilderConfig.builder_optimization_level = property(
            lambda self: self._opt_level, lambda self, v: setattr(self, "_opt_level", v))
    if shape["calibrators"]:
        IBuilderConfig.int8_calibrator = property(
            lambda self: self._int8_calibrator, lambda self, v: setattr(self, "_int8_calibrator", v))

        def set_calibration_profile(self, profile) -> bool:
            """True if the calibration profile was set correctly (TensorRT's documented return)."""
            if not profile.valid_for(self.network_inputs):
                return False
            self.calibration_profile = profile
            return True

        IBuilderConfig.set_calibration_profile = set_calibration_profile

        class IInt8Calibrator:
            def __init__(self) -> None:
                pass

        class IInt8EntropyCalibrator2(IInt8Calibrator):
            pass

        class IInt8MinMaxCalibrator(IInt8Calibrator):
            pass

        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
        trt.IInt8MinMaxCalibrator = IInt8MinMaxCalibrator
    trt.IBuilderConfig = IBuilderConfig

    class Builder:
        def __init__(self, logger) -> None:
            self.logger = logger
            self.networks: List[FakeNetwork] = []
            # a release without DLA on Linux reports none, whatever the board has
            self.num_DLA_cores = num_dla_cores if shape["dla"] else 0

        def create_network(self, flags: int = 0) -> FakeNetwork:
            network = FakeNetwork(flags)
            self.networks.append(network)
            return network

        def create_builder_config(self) -> IBuilderConfig:
            config = IBuilderConfig()
            config.network_inputs = self.networks[-1].inputs if self.networks else []
            return config

        def create_optimization_profile(self) -> FakeProfile:
            return FakeProfile()

        def _read_calibration_batch(self, network: FakeNetwork, config: IBuilderConfig, names, pointers):
            """Read each input as TensorRT's calibrator does: float32, whatever the network input's
            type (trtexec allocates volume * sizeof(float) per calibration input), at the
            calibration profile's shape (or the input's static shape)."""
            sums = []
            for name, pointer in zip(names, pointers):
                tensor = next(t for t in network.inputs if t.name == name)
                if config.calibration_profile is not None and name in config.calibration_profile.shapes:
                    shape = config.calibration_profile.shapes[name][1]
                elif all(d > 0 for d in tensor.shape):
                    shape = tensor.shape
                else:
                    self.logger.log(severity.ERROR, f"calibration profile not set for dynamic input {name}")
                    return None
                wanted = int(np.prod(shape)) * 4
                buffer = DEVICE_MEMORY.get(int(pointer))
                if buffer is None or buffer.nbytes < wanted:
                    held = "no buffer" if buffer is None else f"{buffer.nbytes} bytes"
                    self.logger.log(severity.ERROR, f"calibration input {name}: TensorRT reads {wanted} bytes of "
                                    f"float32 at {pointer:#x}, which holds {held}")
                    return None
                sums.append(float(buffer[:wanted].view(np.float32).astype(np.float64).sum()))
            return sums

        def build_serialized_network(self, network: FakeNetwork, config: IBuilderConfig):
            calibration = None
            calibrator = config._int8_calibrator
            if calibrator is not None:
                calibration = {"batch_size": calibrator.get_batch_size(), "batches": 0, "from_cache": False}
                cache = calibrator.read_calibration_cache()
                if cache:
                    calibration["from_cache"] = True
                else:
                    names = [t.name for t in network.inputs]
                    calibration["sums"] = []
                    while (pointers := calibrator.get_batch(names)) is not None:
                        read = self._read_calibration_batch(network, config, names, pointers)
                        if read is None:
                            return None
                        calibration["sums"].append(read)
                        calibration["batches"] += 1
                    if calibration["batches"] == 0:
                        self.logger.log(severity.ERROR, "calibration failure: no batches")
                        return None
                    calibrator.write_calibration_cache(b"TRT-fake-EntropyCalibration2\n" + str(calibration["batches"]).encode())
            if config.timing_cache is not None:
                config.timing_cache.blob += b"|timed"
            set_flags = [n for n in ("EXPLICIT_BATCH", "STRONGLY_TYPED")
                         if hasattr(trt.NetworkDefinitionCreationFlag, n)
                         and network.flags & (1 << int(getattr(trt.NetworkDefinitionCreationFlag, n)))]
            plan = {
                "fake_engine": version,
                "weak_typing_exists": shape["weak_flags"],
                "network_flags": set_flags,
                "builder_flags": config.flags,
                "pools": config.pools,
                "profiles": [p.shapes for p in config.profiles],
                "calibration_profile": config.calibration_profile.shapes if config.calibration_profile else None,
                "optimization_level": config._opt_level,
                "profiling_verbosity": config.profiling_verbosity.name,
                "device": config.default_device_type.name,
                "dla_core": config.DLA_core,
                "calibration": calibration,
                "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network.inputs],
                "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network.outputs],
                "layers": [[l.name, l.op, l.dtype] for l in network.layers],
                "fp16_weights": network.fp16_weights,
                "fast_fp16": fast_fp16,
                "parser_flags": network.parser_flags,
                "hardware_compatibility_level": getattr(getattr(config, "hardware_compatibility_level", None), "name", None),
            }
            return MAGIC + json.dumps(plan).encode()

    if shape["fast_fp16"]:  # the platform queries went with weak typing in 11
        Builder.platform_has_fast_fp16 = property(lambda self: fast_fp16)
        Builder.platform_has_fast_int8 = property(lambda self: fast_int8)
    trt.Builder = Builder
    trt.OnnxParser = OnnxParser

    class EngineInspector:
        def __init__(self, plan: dict) -> None:
            self.plan = plan

        def get_engine_information(self, fmt) -> str:
            if self.plan["profiling_verbosity"] != "DETAILED":
                return json.dumps({"Layers": [layer[0] for layer in self.plan["layers"]]})
            strong = "STRONGLY_TYPED" in self.plan["network_flags"] or not self.plan["weak_typing_exists"]
            # weak typing: the flags decide; strong: what the ONNX carries (Q/DQ, float16 weights)
            flags, layers = self.plan["builder_flags"], self.plan["layers"]
            qdq = any(op == "QuantizeLinear" for _, op, _ in layers)
            # FP16 by the flag where the GPU has no fast FP16: TensorRT keeps the FP32 kernels
            compute = "int8" if "INT8" in flags or strong and qdq \
                else "float16" if "FP16" in flags and self.plan["fast_fp16"] or strong and self.plan["fp16_weights"] \
                else "float32"
            return json.dumps({"Layers": [
                {"Name": name, "LayerType": op,
                 "Outputs": [{"Name": f"{name}_out",
                              "Format/Datatype": INSPECTOR_FORMATS[compute if dtype in ("float32", "float16") else dtype]}]}
                for name, op, dtype in layers
            ]})

    class ICudaEngine:
        def __init__(self, plan: dict) -> None:
            self.plan = plan
            self.tensors = [(n, s, d, True) for n, s, d in plan["inputs"]] + [(n, s, d, False) for n, s, d in plan["outputs"]]

        num_layers = property(lambda self: len(self.plan["layers"]))
        num_io_tensors = property(lambda self: len(self.tensors))
        num_optimization_profiles = property(lambda self: max(1, len(self.plan["profiles"])))

        def get_tensor_name(self, i: int) -> str:
            return self.tensors[i][0]

        def _tensor(self, name: str):
            return next(t for t in self.tensors if t[0] == name)

        def get_tensor_mode(self, name: str):
            return trt.TensorIOMode.INPUT if self._tensor(name)[3] else trt.TensorIOMode.OUTPUT

        def get_tensor_shape(self, name: str):
            return list(self._tensor(name)[1])

        def get_tensor_dtype(self, name: str):
            return getattr(trt.DataType, self._tensor(name)[2])

        def get_tensor_profile_shape(self, name: str, profile: int):
            return self.plan["profiles"][profile][name]

        def create_engine_inspector(self) -> EngineInspector:
            return EngineInspector(self.plan)

    class Runtime:
        def __init__(self, logger) -> None:
            self.engine_host_code_allowed = False  # TensorRT's default
            self.lean_runtime_of: Optional[str] = None  # the release whose lean runtime load_runtime gave

        def load_runtime(self, path: str) -> Optional["Runtime"]:
            """A runtime for plans built VERSION_COMPATIBLE + EXCLUDE_LEAN_RUNTIME by the release
            whose lean library ``path`` is (here: a file whose text is that release)."""
            try:
                release = open(path).read().strip()
            except OSError:
                return None
            lean = Runtime(None)
            lean.lean_runtime_of = release
            return lean

        def _runs(self, plan: dict) -> bool:
            built = plan.get("fake_engine")
            flags = plan.get("builder_flags", [])
            if "VERSION_COMPATIBLE" not in flags:
                return built == version
            if "EXCLUDE_LEAN_RUNTIME" in flags:
                return built == (self.lean_runtime_of or version)
            b, r = tuple(int(n) for n in built.split(".")), numbers
            later = r >= b and (b[0] == r[0] or (b[0], r[0]) in {(8, 9), (8, 10), (10, 11)})
            # the embedded lean runtime is host code: refused unless allowed (TensorRT's default)
            return later and self.engine_host_code_allowed

        def deserialize_cuda_engine(self, blob: bytes) -> Optional[ICudaEngine]:
            blob = bytes(blob)
            if not blob.startswith(MAGIC):
                return None
            try:
                plan = json.loads(blob[len(MAGIC):])
            except ValueError:
                return None
            return ICudaEngine(plan) if self._runs(plan) else None

    trt.ICudaEngine = ICudaEngine
    trt.Runtime = Runtime
    return trt


def expected_precisions(plan: dict, compute: str) -> Dict[str, int]:
    """What the engine inspector reports for a fake engine whose floating layers run in
    ``compute`` precision: integer layers (shape arithmetic, ArgMax, casts to int) keep their type."""
    names = {"float32": "fp32", "float16": "fp16", "int8": "int8", "uint8": "uint8", "int32": "int32",
             "int64": "int64", "bool": "bool", "bfloat16": "bf16"}
    counts: Dict[str, int] = {}
    for _name, _op, dtype in plan["layers"]:
        key = compute if dtype in ("float32", "float16") or (dtype == "int8" and compute == "int8") else names[dtype]
        counts[key] = counts.get(key, 0) + 1
    return counts


def fake_plan(engine: bytes) -> dict:
    """What fcn-edge asked the fake to build."""
    assert engine.startswith(MAGIC), "not an engine built by FakeTensorRT"
    return json.loads(engine[len(MAGIC):])
