"""fcn-edge's engine-build control flow, run against FakeTensorRT (tests/fake_tensorrt.py).

The fake builds nothing: these tests check what fcn-edge *asks* of TensorRT per version
(typing, flags, profiles, calibrator, caches, DLA), what it writes (engine + sidecar,
atomically) and how it refuses. Real builds are in tests/test_engine_trt.py (marker trt).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from fake_tensorrt import DLA_OPS, FakeDevice, expected_precisions, fake_plan, make_fake_tensorrt
from fcn_edge.artifacts import check_engine_compatible, read_engine_sidecar
from fcn_edge.engine.artifact import write_engine
from fcn_edge.engine.build import build_engine, run_build
from fcn_edge.engine.capabilities import probe
from fcn_edge.engine.config import BuildConfig, ShapeOverrides, parse_shape_arguments
from fcn_edge.engine.summary import summarize_engine
from fcn_edge.errors import DataError, EngineBuildError, EngineMismatchError, MissingDependencyError
from tiny_models import make_images, make_tiny_onnx
from trt_usage import load_surfaces

# The tiny models' optimisation profile, from their ModelMeta: sizes 16x16..128x160, opt
# 32x48, batch 1..4 (tests/tiny_models.py).
PROFILE_NCHW = [[1, 3, 16, 16], [1, 3, 32, 48], [4, 3, 128, 160]]
PROFILE_NHWC = [[1, 16, 16, 3], [1, 32, 48, 3], [4, 128, 160, 3]]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """The product's own graphs: exported fcn8s_tiny, and its FP16 and Q/DQ INT8 variants."""
    root = tmp_path_factory.mktemp("onnx")
    make_tiny_onnx(root / "tiny_fp32.onnx")
    make_tiny_onnx(root / "tiny_fp16.onnx", precision="fp16")
    make_tiny_onnx(root / "tiny_int8.onnx", precision="int8")
    make_tiny_onnx(root / "tiny_int8-trt8.onnx", precision="int8", min_tensorrt=8)  # FP32 Q/DQ at opset 17
    make_tiny_onnx(root / "tiny_fused.onnx", fused=True)
    make_tiny_onnx(root / "tiny_static.onnx", dynamic=False)
    return root


def graph_ops(path: Path):
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def build(onnx: Path, version: str, config: BuildConfig = BuildConfig(), **fake_kwargs):
    trt = make_fake_tensorrt(version, **fake_kwargs)
    result = run_build(onnx, config, trt=trt, device=FakeDevice())
    return result, fake_plan(result.engine), trt


# -- the fake is honest about which names each release has ------------------------------------
@pytest.mark.parametrize("version", ["8.6.1", "10.3.0", "10.16.1.11", "11.4.0.106"])
def test_fake_has_only_names_the_real_release_has(version):
    surface = next(s for s in load_surfaces() if s.label == version)
    trt = make_fake_tensorrt(version)
    for holder in ("NetworkDefinitionCreationFlag", "BuilderFlag", "IBuilderConfig", "Builder", "ParserError"):
        names = [n for n in vars(getattr(trt, holder)) if not n.startswith("_")]
        absent = [n for n in names if not surface.has(n)]
        assert not absent, f"FakeTensorRT {version} {holder} has {absent}, the real one does not"
    for name in ("IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator"):
        assert hasattr(trt, name) == surface.has(name)
    assert hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") == surface.has("STRONGLY_TYPED")
    assert hasattr(trt.BuilderFlag, "FP16") == surface.has("FP16")


# -- typing and flags per version -------------------------------------------------------------
CASES = [
    # version, variant, precision, expected typing, network flags, builder flags
    ("8.6.1", "fp32", "auto", "weak", ["EXPLICIT_BATCH"], []),
    ("8.6.1", "fp32", "fp16", "weak", ["EXPLICIT_BATCH"], ["FP16"]),
    ("8.6.1", "fp16", "auto", "weak", ["EXPLICIT_BATCH"], ["FP16"]),
    ("8.6.1", "int8-trt8", "auto", "weak", ["EXPLICIT_BATCH"], ["INT8", "FP16"]),  # FP16 beside INT8 by default
    ("10.3.0", "fp32", "auto", "strong", ["STRONGLY_TYPED"], []),
    ("10.3.0", "fp32", "fp16", "weak", [], ["FP16"]),
    ("10.3.0", "fp16", "auto", "strong", ["STRONGLY_TYPED"], []),
    ("10.3.0", "int8", "int8", "strong", ["STRONGLY_TYPED"], []),
    ("10.16.1.11", "int8", "auto", "strong", ["STRONGLY_TYPED"], []),
    ("11.4.0.106", "fp16", "auto", "strong", [], []),  # every network is strongly typed on 11
    ("11.4.0.106", "int8", "auto", "strong", [], []),
    ("11.4.0.106", "fp32", "fp32", "strong", [], []),
]


@pytest.mark.parametrize("version, variant, precision, typing, network_flags, builder_flags", CASES)
def test_typing_and_flags_per_version(onnx_dir, version, variant, precision, typing, network_flags, builder_flags):
    result, plan, _ = build(onnx_dir / f"tiny_{variant}.onnx", version, BuildConfig(precision=precision))
    assert result.plan.typing == typing
    assert plan["network_flags"] == network_flags
    assert [f for f in plan["builder_flags"]] == builder_flags
    expected_precision = {"fp32": precision if precision != "auto" else "fp32"}.get(variant, variant.split("-")[0])
    assert result.plan.precision == expected_precision
    assert plan["profiling_verbosity"] == "DETAILED"


def test_forced_weak_typing_on_10x_uses_flags(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_int8.onnx", "10.3.0", BuildConfig(typing="weak", fp16_fallback=True))
    assert result.plan.typing == "weak"
    assert plan["network_flags"] == [] and plan["builder_flags"] == ["INT8", "FP16"]


def test_platform_without_fast_fp16_is_said_not_hidden(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "8.6.1", BuildConfig(precision="fp16"), fast_fp16=False)
    assert plan["builder_flags"] == ["FP16"]
    assert any("no fast FP16" in note for note in result.plan.notes)


# -- refusals ----------------------------------------------------------------------------------
REFUSALS = [
    ("11.4.0.106", "fp32", BuildConfig(precision="fp16"),
     ["FP16 from builder flags (BuilderFlag.FP16) is not available on TensorRT 11.4.0.106",
      "fcn-edge quantize tiny_fp32.onnx --precision fp16"]),
    ("11.4.0.106", "fp32", BuildConfig(precision="int8", int8_mode="implicit"),
     ["legacy INT8 calibrator", "not available on TensorRT 11.4.0.106", "--int8-mode explicit"]),
    ("11.4.0.106", "fp16", BuildConfig(typing="weak"), ["Weak typing", "not available on TensorRT 11.4.0.106"]),
    ("8.6.1", "fp16", BuildConfig(typing="strong"),
     ["STRONGLY_TYPED) is not available on TensorRT 8.6.1", "--typing weak"]),
    ("8.5.2", "fp32", BuildConfig(optimization_level=5),
     ["builder optimisation level", "not available on TensorRT 8.5.2", "omit --opt-level"]),
    ("10.3.0", "fp32", BuildConfig(precision="int8"),
     ["--int8-mode explicit needs a Q/DQ ONNX", "fcn-edge quantize tiny_fp32.onnx --precision int8 --calib",
      "--int8-mode implicit"]),
    ("11.4.0.106", "fp32", BuildConfig(precision="int8"),
     ["needs a Q/DQ ONNX", "has no legacy calibrator"]),
    ("10.3.0", "int8", BuildConfig(precision="fp16"), ["already quantised", "unquantised ONNX"]),
    ("10.3.0", "fp16", BuildConfig(precision="fp32"), ["carries FP16", "FP32 ONNX"]),
    ("10.3.0", "fp32", BuildConfig(precision="int8", int8_mode="implicit"),
     ["needs calibration images (--calib"]),
    ("10.3.0", "fp16", BuildConfig(fp16_fallback=True, precision="fp16"), ["--fp16-fallback"]),
    ("10.3.0", "fp16", BuildConfig(dla_core=0), ["--dla-core 0: this device has 0 DLA core(s)", "omit --dla-core"]),
    ("10.3.0", "fp16", BuildConfig(typing="strong", precision="fp16", dla_core=0), ["0 DLA core"]),
]


@pytest.mark.parametrize("version, variant, config, phrases", REFUSALS)
def test_refusals_say_what_to_do(onnx_dir, version, variant, config, phrases):
    with pytest.raises(EngineBuildError) as info:
        build(onnx_dir / f"tiny_{variant}.onnx", version, config)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_dla_fp32_is_refused_and_fp16_falls_back(onnx_dir):
    with pytest.raises(EngineBuildError, match="DLA runs FP16 and INT8 only"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(dla_core=1), num_dla_cores=2)
    result, plan, _ = build(onnx_dir / "tiny_fused.onnx", "8.6.1", BuildConfig(precision="fp16", dla_core=1),
                            num_dla_cores=2)
    assert plan["device"] == "DLA" and plan["dla_core"] == 1
    assert plan["builder_flags"] == ["FP16", "GPU_FALLBACK"]
    # the fused graph's Cast, Transpose and shape arithmetic cannot run on the (fake) DLA
    ops = graph_ops(onnx_dir / "tiny_fused.onnx")
    assert result.network_layers == len(ops)
    assert result.dla_gpu_fallback_layers == sum(op not in DLA_OPS for op in ops) > 0
    # an INT8 Q/DQ model on DLA before 11: weak typing, INT8 with FP16 for the rest
    result, plan, _ = build(onnx_dir / "tiny_int8.onnx", "10.3.0", BuildConfig(dla_core=0), num_dla_cores=2)
    assert result.plan.typing == "weak" and plan["builder_flags"] == ["INT8", "FP16", "GPU_FALLBACK"]
    # on 11.4.1 (JetPack 7.2.2, AGX Orin) DLA networks are strongly typed like all others
    result, plan, _ = build(onnx_dir / "tiny_fp16.onnx", "11.4.1", BuildConfig(dla_core=0), num_dla_cores=2)
    assert result.plan.typing == "strong" and plan["builder_flags"] == ["GPU_FALLBACK"]


def test_dla_builds_one_shape(onnx_dir):
    """DLA has no dynamic dimensions: ModelMeta's range becomes its opt shape (said in a note),
    and the layers the DLA supports then run there instead of all falling back."""
    result, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(precision="fp16", dla_core=0),
                            num_dla_cores=2)
    assert plan["profiles"] == [{"input": [PROFILE_NCHW[1]] * 3}]
    assert any("DLA runs one shape: input 'input' is fixed at 1x3x32x48" in n for n in result.plan.notes)
    ops = graph_ops(onnx_dir / "tiny_fp32.onnx")
    assert result.dla_gpu_fallback_layers == sum(op not in DLA_OPS for op in ops) < len(ops)


def test_dla_refuses_a_range_given_on_the_command_line(onnx_dir):
    shapes = ShapeOverrides(min=parse_shape_arguments(["1x3x16x16"]), opt=parse_shape_arguments(["1x3x32x48"]),
                            max=parse_shape_arguments(["4x3x64x64"]))
    with pytest.raises(EngineBuildError, match=r"min = opt = max.*give one shape with --opt input:1x3x32x48"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(precision="fp16", dla_core=0, shapes=shapes),
              num_dla_cores=2)
    only_opt = ShapeOverrides(opt=parse_shape_arguments(["2x3x64x64"]))
    _, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(precision="fp16", dla_core=0, shapes=only_opt),
                       num_dla_cores=2)
    assert plan["profiles"] == [{"input": [[2, 3, 64, 64]] * 3}]


def test_dla_requires_the_entropy_calibrator(onnx_dir, tmp_path):
    config = BuildConfig(int8_mode="implicit", calibrator="minmax", dla_core=0, calibration_cache=tmp_path / "c.cache")
    with pytest.raises(EngineBuildError, match="DLA requires IInt8EntropyCalibrator2.*--calibrator entropy"):
        run_build(onnx_dir / "tiny_fp32.onnx", config, _batches([(1, 3, 32, 48)]),
                  trt=make_fake_tensorrt("8.6.1", num_dla_cores=2), device=FakeDevice())


@pytest.mark.parametrize("version, has_dla", [
    ("8.5", True), ("8.6", True), ("10.3", True), ("10.7", True), ("10.8", False), ("10.13", False),
    ("10.16", False), ("11.0", False), ("11.4", False), ("11.4.0.106", False), ("11.4.1", True),
])
def test_dla_is_declared_where_the_release_notes_give_it(onnx_dir, version, has_dla):
    """10.7 was the last 10.x with DLA; 11.0-11.4.0 have none on Linux; 11.4.1 brings it back on AGX Orin."""
    from fcn_edge.engine.capabilities import DECLARED, declared, dla_in_release
    from fcn_edge.engine.engine_file import plan_engine_build

    assert declared(version).dla is has_dla is dla_in_release(version)
    assert all(row.dla is dla_in_release(key) for key, row in DECLARED.items())
    config = BuildConfig(dla_core=0)
    if has_dla:
        assert plan_engine_build(onnx_dir / "tiny_fp16.onnx", config, trt_version=version).plan.dla_core == 0
    else:
        with pytest.raises(EngineBuildError, match=f"not available on TensorRT {version}: DLA builds need a Jetson"):
            plan_engine_build(onnx_dir / "tiny_fp16.onnx", config, trt_version=version)


def int32_to_uint8_mask(path: Path) -> Path:
    """The mask head fcn-edge exported before it cast through float (ArgMax -> int32 -> uint8),
    made from a real int32-mask export by appending the Cast(to=UINT8) that exporter wrote, so
    the graph stays the bad one whatever the exporter does today."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(make_tiny_onnx(path, fused=True, output_kind="mask", mask_dtype="int32")))
    output = model.graph.output[0]
    for node in model.graph.node:
        node.output[:] = [f"{output.name}_int32" if o == output.name else o for o in node.output]
    model.graph.node.append(helper.make_node("Cast", [f"{output.name}_int32"], [output.name],
                                             to=TensorProto.UINT8, name="/model/Cast_1"))
    output.type.tensor_type.elem_type = TensorProto.UINT8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("version", ["8.6.1", "10.3.0", "11.4.0.106"])
def test_a_cast_tensorrt_cannot_build_is_refused_before_building(tmp_path, version):
    """TensorRT's DataType.UINT8: "uint8 conversions are only supported for {float32, float16}"."""
    path = int32_to_uint8_mask(tmp_path / "old_mask.onnx")
    trt = make_fake_tensorrt(version)
    builder_made = []
    real_builder = trt.Builder
    trt.Builder = lambda logger: builder_made.append(1) or real_builder(logger)
    with pytest.raises(EngineBuildError) as info:
        run_build(path, BuildConfig(), trt=trt, device=FakeDevice())
    message = str(info.value)
    assert "old_mask.onnx: node '/model/Cast_1' (Cast) converts int32 to uint8" in message
    assert f"TensorRT {version} cannot build" in message and "re-export the model with a current fcn-edge" in message
    assert "--mask-dtype int32" in message
    assert len(builder_made) == 1  # refused at the plan, before any network was parsed or built


def test_the_dry_run_refuses_the_cast_without_tensorrt(tmp_path, monkeypatch):
    from fcn_edge.engine.engine_file import plan_engine_build

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    path = int32_to_uint8_mask(tmp_path / "old_mask.onnx")
    with pytest.raises(EngineBuildError, match="'/model/Cast_1' \\(Cast\\) converts int32 to uint8"):
        plan_engine_build(path, trt_version="8.6")


def test_casts_from_and_to_float_are_built(onnx_dir, tmp_path):
    """The fused input's uint8 -> float32 and an int32 mask pass the check; each Cast is read with
    the element types on both of its sides."""
    from fcn_edge.engine.onnx_facts import read_onnx_facts

    facts = read_onnx_facts(onnx_dir / "tiny_fused.onnx")
    assert ("uint8", "float32") in {(c.source, c.target) for c in facts.casts}
    build(onnx_dir / "tiny_fused.onnx", "10.3.0")
    int32_mask = make_tiny_onnx(tmp_path / "int32.onnx", fused=True, output_kind="mask", mask_dtype="int32")
    assert ("int64", "int32") in {(c.source, c.target) for c in read_onnx_facts(int32_mask).casts}
    build(int32_mask, "10.3.0")


def test_todays_uint8_mask_export_is_judged_by_its_casts(tmp_path):
    """A uint8-mask export of this checkout either casts into uint8 from float (and builds) or
    is refused by the plan; it never reaches TensorRT with an int32 -> uint8 cast."""
    from fcn_edge.engine.onnx_facts import read_onnx_facts

    path = make_tiny_onnx(tmp_path / "mask.onnx", fused=True, output_kind="mask")
    into_uint8 = [c for c in read_onnx_facts(path).casts if c.target == "uint8"]
    assert into_uint8, "the uint8 mask head has no Cast to uint8"
    if all(c.source in ("float32", "float16") for c in into_uint8):
        build(path, "10.3.0")
    else:
        with pytest.raises(EngineBuildError, match="re-export the model with a current fcn-edge"):
            build(path, "10.3.0")


def float_cast_uint8_mask(path: Path) -> Path:
    """A uint8 mask head TensorRT can build: ArgMax -> int32 -> float32 -> uint8."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(make_tiny_onnx(path, fused=True, output_kind="mask", mask_dtype="int32")))
    output = model.graph.output[0]
    for node in model.graph.node:
        node.output[:] = [f"{output.name}_int32" if o == output.name else o for o in node.output]
    model.graph.node.extend([
        helper.make_node("Cast", [f"{output.name}_int32"], [f"{output.name}_float"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Cast", [f"{output.name}_float"], [output.name], to=TensorProto.UINT8, name="to_uint8"),
    ])
    output.type.tensor_type.elem_type = TensorProto.UINT8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("text, precision", [
    # "Format/Datatype" texts as TensorRT's engine inspector writes them
    ("Row major linear UInt8 format", "uint8"), ("Channel major UInt8 format", "uint8"), ("UInt8", "uint8"),
    ("Row major linear BFloat16 format", "bf16"), ("Channel major BFloat16 format where channel % 8 == 0", "bf16"),
    ("BFloat16", "bf16"), ("Four wide channel vectorized row major Int8 format", "int8"),
    ("Channel major INT8 format where column stride % 32 == 0", "int8"), ("Int8", "int8"),
    ("Channel major FP16 format where channel % 2 == 0", "fp16"), ("Half", "fp16"),
    ("Row major linear FP32", "fp32"), ("Float", "fp32"), ("Row major linear Int32", "int32"),
    ("Row major linear Int64 format", "int64"), ("Row major linear BOOL", "bool"), ("Row major linear FP8 format", "fp8"),
    ("Unknown format", "other"),
])
def test_layer_precision_words(text, precision):
    from fcn_edge.engine.summary import precision_of

    assert precision_of(text) == precision


def test_a_uint8_output_layer_is_not_counted_as_int8(tmp_path):
    path = float_cast_uint8_mask(tmp_path / "mask.onnx")
    trt = make_fake_tensorrt("8.6.1")
    result = run_build(path, BuildConfig(precision="fp16"), trt=trt, device=FakeDevice())
    summary = summarize_engine(trt, result.engine)
    assert summary.layer_precisions["uint8"] == 1 and "int8" not in summary.layer_precisions
    assert summary.layer_precisions == expected_precisions(fake_plan(result.engine), "fp16")


def test_parser_errors_name_nodes_and_ops(tmp_path):
    import onnx

    path = make_tiny_onnx(tmp_path / "bad.onnx")
    model = onnx.load(str(path))
    model.graph.node[1].op_type = "FakeUnsupportedOp"
    model.graph.node[1].name = "mystery_1"
    onnx.save(model, str(path))
    for version in ("8.6.1", "10.3.0"):  # node index -> ONNX name on 8.x, node_name() on 10.x
        with pytest.raises(EngineBuildError) as info:
            build(path, version)
        message = str(info.value)
        assert "bad.onnx" in message and "1 error(s)" in message
        assert "node 'mystery_1' (FakeUnsupportedOp): No importer registered" in message


# -- profiles ----------------------------------------------------------------------------------
def test_profile_shapes_come_from_meta(onnx_dir):
    _, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0")
    assert plan["profiles"] == [{"input": PROFILE_NCHW}]
    _, plan, _ = build(onnx_dir / "tiny_fused.onnx", "10.3.0")
    assert plan["profiles"] == [{"input": PROFILE_NHWC}]


def test_profile_shapes_from_the_command_line_in_the_input_layout(onnx_dir):
    shapes = ShapeOverrides(min=parse_shape_arguments(["1x8x8x3"]), opt=parse_shape_arguments(["input:2x32x32x3"]),
                            max=parse_shape_arguments(["4x128x128x3"]))
    _, plan, _ = build(onnx_dir / "tiny_fused.onnx", "8.6.1", BuildConfig(shapes=shapes))
    assert plan["profiles"] == [{"input": [[1, 8, 8, 3], [2, 32, 32, 3], [4, 128, 128, 3]]}]
    nchw = ShapeOverrides(opt=parse_shape_arguments(["1x3x32x32"]))
    with pytest.raises(EngineBuildError) as info:
        build(onnx_dir / "tiny_fused.onnx", "8.6.1", BuildConfig(shapes=nchw))
    assert "NHWC" in str(info.value) and "NxHxWx3" in str(info.value) and "fixes it to 3" in str(info.value)
    backwards = ShapeOverrides(min=parse_shape_arguments(["1x3x64x64"]), max=parse_shape_arguments(["1x3x32x32"]))
    with pytest.raises(EngineBuildError, match="min <= opt <= max"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(shapes=backwards))
    with pytest.raises(EngineBuildError, match="does not have"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0",
              BuildConfig(shapes=ShapeOverrides(opt=parse_shape_arguments(["image:1x3x32x32"]))))


def test_static_onnx_needs_no_profile(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_static.onnx", "10.3.0")
    assert plan["profiles"] == [] and not result.plan.needs_profile
    assert result.plan.profiles[0].opt == (1, 3, 32, 48)


# -- workspace, optimisation level, timing cache -----------------------------------------------
def test_workspace_opt_level_and_timing_cache(onnx_dir, tmp_path):
    cache = tmp_path / "timing.cache"
    config = BuildConfig(workspace_bytes=1 << 30, optimization_level=5, timing_cache=cache)
    result, plan, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)
    assert plan["pools"] == {"WORKSPACE": 1 << 30} and plan["optimization_level"] == 5
    assert cache.read_bytes() == b"fake-timing-cache|timed" and result.timing_cache_saved == cache
    build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)  # loads the saved cache and extends it
    assert cache.read_bytes() == b"fake-timing-cache|timed|timed"
    cache.write_bytes(b"fake-timing-cache-other-gpu|timed")
    with pytest.raises(EngineBuildError, match="made by another GPU or TensorRT version"):
        build(onnx_dir / "tiny_fp32.onnx", "10.3.0", config)



def test_a_rejected_timing_cache_falls_back_to_an_empty_one(onnx_dir, tmp_path, caplog):
    """create_timing_cache returns None for a blob TensorRT rejects; as Polygraphy does, the
    build goes on with an empty cache and saves it over the unreadable file."""
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"garbage")
    result, _, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", BuildConfig(timing_cache=cache))
    assert cache.read_bytes() == b"fake-timing-cache|timed"
    assert "rejected this timing cache" in caplog.text and "building with an empty one" in caplog.text
    assert any("timing cache rejected" in w for w in result.warnings)


def _rejecting_profiles(trt):
    """FakeTensorRT whose builder rejects every profile (as TensorRT does for reasons of its own)."""
    make = trt.Builder.create_optimization_profile

    def rejected(self):
        profile = make(self)
        profile.rejected = True
        return profile

    trt.Builder.create_optimization_profile = rejected
    return trt


def test_a_rejected_optimisation_profile_is_an_error(onnx_dir):
    trt = _rejecting_profiles(make_fake_tensorrt("10.3.0"))
    with pytest.raises(EngineBuildError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", BuildConfig(), trt=trt, device=FakeDevice())
    assert "TensorRT 10.3.0 rejected the optimisation profile ('input' min 1x3x16x16, opt 1x3x32x48, " \
           "max 4x3x128x160)" in str(info.value)
    assert "--min/--opt/--max" in str(info.value)


def test_a_rejected_calibration_profile_is_an_error(onnx_dir, tmp_path):
    trt = make_fake_tensorrt("8.6.1")
    real_set = trt.IBuilderConfig.set_calibration_profile

    def set_rejected(self, profile):
        profile.rejected = True
        return real_set(self, profile)

    trt.IBuilderConfig.set_calibration_profile = set_rejected
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    device = FakeDevice()
    with pytest.raises(EngineBuildError, match=r"rejected the calibration profile 'input' 2x3x32x48"):
        run_build(onnx_dir / "tiny_fp32.onnx", config, _batches([(2, 3, 32, 48)]), trt=trt, device=device)
    assert device.memory == {}


# -- implicit INT8: the legacy calibrator, fed an iterable of batches ---------------------------
def _image_batches(folder: Path, count: int, batch: int):
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.precision.calibration import calibration_batches

    make_images(folder, count)
    meta = read_onnx_meta(make_tiny_onnx(folder.parent / "meta_source.onnx"))
    return calibration_batches(folder, meta, batch_size=batch, pad_last=True, progress=False, input_size=(32, 48))


@pytest.mark.parametrize("calibrator", ["entropy", "minmax"])
def test_implicit_int8_calibrates_then_reuses_the_cache(onnx_dir, tmp_path, calibrator):
    batches = _image_batches(tmp_path / "calib", 5, batch=2)
    cache = tmp_path / "model.calib.cache"
    config = BuildConfig(int8_mode="implicit", calibration_cache=cache, calibrator=calibrator)
    device = FakeDevice()
    trt = make_fake_tensorrt("8.6.1")
    result = run_build(onnx_dir / "tiny_fp32.onnx", config, batches, trt=trt, device=device)
    plan = fake_plan(result.engine)
    assert result.plan.precision == "int8" and result.plan.typing == "weak"
    assert result.plan.calibrator == {"entropy": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}[calibrator]
    assert result.plan.calibration == str(tmp_path / "calib")
    assert plan["builder_flags"] == ["INT8", "FP16"]
    calibrated = {k: plan["calibration"][k] for k in ("batch_size", "batches", "from_cache")}
    assert calibrated == {"batch_size": 1, "batches": 3, "from_cache": False}  # 5 images, last padded
    assert device.uploads == 3 and device.memory == {}  # batch buffers freed after the build
    # the calibration profile is the first batch's shape
    assert plan["calibration_profile"] == {"input": [[2, 3, 32, 48]] * 3}
    assert cache.read_bytes().startswith(b"TRT-fake-EntropyCalibration2")

    cached = BuildConfig(int8_mode="implicit", calibration_cache=cache)  # no batches needed now
    result2, plan2, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0", cached)
    assert plan2["calibration"]["from_cache"] is True and plan2["calibration"]["batches"] == 0
    assert result2.plan.calibration == "" and plan2["calibration_profile"] is None
    assert any("deprecated since TensorRT 10.1" in n for n in result2.plan.notes)


def _batches(shapes, dtype=np.float32):
    """A one-shot generator of {input: zeros(shape)} batches: it cannot be rewound."""
    for shape in shapes:
        yield {"input": np.zeros(shape, dtype)}


def test_a_one_shot_generator_calibrates_on_every_batch(onnx_dir, tmp_path):
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    device = FakeDevice()
    result = run_build(onnx_dir / "tiny_fp32.onnx", config, _batches([(4, 3, 64, 80)] * 3),
                       trt=make_fake_tensorrt("10.3.0"), device=device)
    plan = fake_plan(result.engine)
    assert plan["calibration"]["batches"] == 3 and device.uploads == 3  # the first batch was not lost
    assert plan["calibration_profile"] == {"input": [[4, 3, 64, 80]] * 3}
    assert result.plan.calibration == "(calibration batches)"


def test_implicit_int8_feeds_uint8_frames_as_float32(onnx_dir, tmp_path):
    """A fused model's calibration batches are uint8 NHWC frames; TensorRT reads float32, so they
    must arrive as float32 with the same values (not 1/4 of a buffer of bytes)."""
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8) for _ in range(3)]
    device = FakeDevice()
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    result = run_build(onnx_dir / "tiny_fused.onnx", config, ({"input": f} for f in frames),
                       trt=make_fake_tensorrt("8.6.1"), device=device)
    calibration = fake_plan(result.engine)["calibration"]
    assert calibration["batches"] == 3
    assert calibration["sums"] == [[float(f.astype(np.float64).sum())] for f in frames]
    assert device.memory == {}


def test_index_inputs_cannot_be_calibrated(onnx_dir, tmp_path):
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    with pytest.raises(DataError, match="input 'input' is int32.*reads every input as float32"):
        run_build(onnx_dir / "tiny_fp32.onnx", config, _batches([(1, 3, 32, 48)], np.int32),
                  trt=make_fake_tensorrt("10.3.0"), device=FakeDevice())


@pytest.mark.parametrize(
    "shapes, phrases",
    [
        ([], ["the data loader provided no data", "a generator cannot be rewound"]),
        ([(8, 3, 32, 48)], ["are 8x3x32x48", "outside the optimisation profile 1x3x16x16 .. 4x3x128x160",
                            "opt shape 1x3x32x48"]),
        ([(2, 3, 32, 48), (2, 3, 32, 48), (2, 3, 64, 64)], ["batch 2 of input 'input'", "every batch must have the same shape"]),
    ],
)
def test_calibration_batches_are_checked(onnx_dir, tmp_path, shapes, phrases):
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    device = FakeDevice()
    with pytest.raises(DataError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", config, _batches(shapes), trt=make_fake_tensorrt("10.3.0"), device=device)
    for phrase in phrases:
        assert phrase in str(info.value)
    assert device.memory == {}  # freed even when calibration failed
    assert not (tmp_path / "c.cache").exists()  # no scales from a calibration that failed


def test_unreadable_calibration_images_are_a_data_error(onnx_dir, tmp_path):
    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.precision.calibration import calibration_batches

    (tmp_path / "list.txt").write_text("missing.png\n")
    batches = calibration_batches(tmp_path / "list.txt", read_onnx_meta(onnx_dir / "tiny_fp32.onnx"), progress=False)
    config = BuildConfig(int8_mode="implicit", calibration_cache=tmp_path / "c.cache")
    with pytest.raises(DataError, match="missing.png"):
        run_build(onnx_dir / "tiny_fp32.onnx", config, batches, trt=make_fake_tensorrt("10.3.0"), device=FakeDevice())


def test_calibration_batches_without_implicit_int8_are_said_unused(onnx_dir):
    result, plan, _ = build(onnx_dir / "tiny_int8.onnx", "10.3.0")
    assert plan["calibration"] is None
    trt = make_fake_tensorrt("10.3.0")
    result = run_build(onnx_dir / "tiny_int8.onnx", BuildConfig(), _batches([(1, 3, 32, 48)]), trt=trt, device=FakeDevice())
    assert fake_plan(result.engine)["calibration"] is None
    assert any("calibration data is not used" in note for note in result.plan.notes)


# -- artifacts ---------------------------------------------------------------------------------
def test_engine_and_sidecar_content(onnx_dir, tmp_path):
    onnx_path = onnx_dir / "tiny_int8.onnx"
    trt = make_fake_tensorrt("10.3.0")
    result = run_build(onnx_path, BuildConfig(workspace_bytes=1 << 28), trt=trt, device=FakeDevice())
    summary = summarize_engine(trt, result.engine)
    engine, sidecar = write_engine(tmp_path / "out" / "tiny.engine", result, summary,
                                   ["fcn-edge", "build-engine", str(onnx_path), "-o", "tiny.engine"])
    assert engine.read_bytes() == result.engine
    data = json.loads(sidecar.read_text())
    section = data["engine"]
    assert data["meta"]["precision"] == "int8" and data["meta"]["class_names"][1] == "road"
    assert data["meta"]["history"][-1].startswith("build-engine: TensorRT 10.3.0 int8 (strong typing)")
    assert section["tensorrt_version"] == "10.3.0"
    assert section["gpu_name"] == "Orin (fake)" and section["compute_capability"] == "8.7"
    assert section["precision"] == "int8" and section["typing"] == "strong" and section["int8_mode"] == "explicit"
    assert section["flags"] == ["NetworkDefinitionCreationFlag.STRONGLY_TYPED"]
    assert section["profiles"] == [{"input": "input", "min": PROFILE_NCHW[0], "opt": PROFILE_NCHW[1], "max": PROFILE_NCHW[2]}]
    assert section["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert section["engine_sha256"] == hashlib.sha256(result.engine).hexdigest()
    assert section["workspace_bytes"] == 1 << 28 and section["build_seconds"] == round(result.build_seconds, 3)
    assert section["built_at"].endswith("Z") and section["layer_count"] == len(fake_plan(result.engine)["layers"])
    assert section["io_tensors"][0] == {"name": "input", "mode": "input", "shape": [-1, 3, -1, -1], "dtype": "float32",
                                        "profile": dict(zip(("min", "opt", "max"), PROFILE_NCHW))}
    assert "fcn-edge build-engine" in section["rebuild_command"]
    assert summary.layer_precisions == expected_precisions(fake_plan(result.engine), "int8")
    assert set(summary.layer_precisions) == {"int8", "int64"}  # shape arithmetic stays int64

    meta, record = read_engine_sidecar(engine)
    assert meta.precision == "int8" and record.typing == "strong"
    check_engine_compatible(section, "10.3.0", "Orin (fake)", (8, 7))
    with pytest.raises(EngineMismatchError, match="rebuild it on this machine with `fcn-edge build-engine"):
        check_engine_compatible(section, "10.16.1.11", "Orin (fake)", (8, 7))
    with pytest.raises(EngineMismatchError, match="compute capability 8.6"):
        check_engine_compatible(section, "10.3.0", "NVIDIA GeForce RTX 3090", "8.6")


def test_engine_write_is_atomic(onnx_dir, tmp_path, monkeypatch):
    result, _, _ = build(onnx_dir / "tiny_fp32.onnx", "10.3.0")
    target = tmp_path / "m.engine"
    target.write_bytes(b"previous engine")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(target):
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        write_engine(target, result)
    assert target.read_bytes() == b"previous engine"  # never a partial engine under the name
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.setattr(os, "replace", real_replace)
    write_engine(target, result)
    assert target.read_bytes() == result.engine


def test_onnx_without_meta_builds_but_cannot_be_written(tmp_path):
    import onnx

    path = make_tiny_onnx(tmp_path / "nometa.onnx", dynamic=False)
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    result, _, _ = build(path, "10.3.0")
    with pytest.raises(EngineBuildError, match="carries no ModelMeta"):
        write_engine(tmp_path / "x.engine", result)
    assert not (tmp_path / "x.engine").exists()


def test_build_engine_returns_bytes(onnx_dir):
    trt = make_fake_tensorrt("11.4.0.106")
    engine = build_engine(onnx_dir / "tiny_fp16.onnx", BuildConfig(), trt=trt, device=FakeDevice())
    assert isinstance(engine, bytes) and fake_plan(engine)["network_flags"] == []


def test_probe_reads_capabilities_from_the_module():
    caps8, caps11 = probe(make_fake_tensorrt("8.5.2")), probe(make_fake_tensorrt("11.4.0.106"))
    assert not caps8.strongly_typed and caps8.fp16_flag and caps8.legacy_calibrator and not caps8.optimization_level
    assert caps11.strongly_typed and not caps11.fp16_flag and not caps11.legacy_calibrator


def test_missing_tensorrt_gives_one_clear_error(onnx_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(MissingDependencyError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", BuildConfig(), device=FakeDevice())
    message = str(info.value)
    assert "'tensorrt' is not installed" in message and "pip install tensorrt" in message
    assert "python3-libnvinfer" in message and "--system-site-packages" in message


def test_engine_file_is_checked_against_its_sidecar(onnx_dir, tmp_path):
    from fcn_edge.artifacts import check_engine_file

    result, _, _ = build(onnx_dir / "tiny_fp16.onnx", "10.3.0")
    engine, _ = write_engine(tmp_path / "m.engine", result)
    _, record = read_engine_sidecar(engine)
    check_engine_file(engine, record)
    engine.write_bytes(b"another engine")
    with pytest.raises(EngineMismatchError, match="not the one its sidecar describes"):
        check_engine_file(engine, record)


def test_tensorrt_present_but_broken_is_not_called_missing(onnx_dir, tmp_path, monkeypatch):
    package = tmp_path / "site" / "tensorrt"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('libnvinfer.so.10: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    with pytest.raises(MissingDependencyError) as info:
        run_build(onnx_dir / "tiny_fp32.onnx", BuildConfig(), device=FakeDevice())
    message = str(info.value)
    assert "installed but cannot load" in message and "libnvinfer.so.10" in message
    assert "pip install tensorrt" in message


# -- the file-to-file step: build_engine_file and the dry run ------------------------------------
def test_build_engine_file_reads_the_onnx_once_and_writes_both_files(onnx_dir, tmp_path, monkeypatch):
    import fcn_edge.engine.onnx_facts as onnx_facts
    from fcn_edge.engine.engine_file import build_engine_file

    hashed = []
    real_sha256 = onnx_facts.file_sha256
    monkeypatch.setattr(onnx_facts, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    trt = make_fake_tensorrt("10.3.0")
    built = build_engine_file(onnx_dir / "tiny_fp16.onnx", tmp_path / "m.engine", trt=trt, device=FakeDevice(),
                              rebuild_args=["fcn-edge", "build-engine", "tiny_fp16.onnx"])
    assert hashed == [onnx_dir / "tiny_fp16.onnx"]  # parsed and hashed once for facts, plan and sidecar
    assert built.engine_path.read_bytes() == built.result.engine and built.sidecar_path == tmp_path / "m.engine.json"
    assert built.summary is not None
    assert built.summary.layer_precisions == expected_precisions(fake_plan(built.result.engine), "fp16")
    meta, record = read_engine_sidecar(built.engine_path)
    assert meta.precision == "fp16" and record.layer_count == built.summary.layer_count
    assert record.rebuild_command == "fcn-edge build-engine tiny_fp16.onnx"


def test_build_engine_file_refuses_an_onnx_without_meta_before_building(tmp_path, monkeypatch):
    import onnx

    from fcn_edge.engine.engine_file import build_engine_file

    path = make_tiny_onnx(tmp_path / "nometa.onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # had it got as far as TensorRT, this would say so
    with pytest.raises(EngineBuildError, match="carries no ModelMeta.*fcn-edge export"):
        build_engine_file(path, tmp_path / "x.engine")
    assert list(tmp_path.iterdir()) == [path]


def test_a_failing_engine_inspector_is_a_warning(onnx_dir, tmp_path, caplog):
    from fcn_edge.engine.engine_file import build_engine_file

    trt = make_fake_tensorrt("10.3.0")

    def broken_inspector(self):
        raise RuntimeError("inspector exploded (simulated)")

    trt.ICudaEngine.create_engine_inspector = broken_inspector
    built = build_engine_file(onnx_dir / "tiny_fp32.onnx", tmp_path / "m.engine", trt=trt, device=FakeDevice())
    assert built.summary is None and "simulated" in built.summary_error
    assert "engine inspector failed" in caplog.text
    _, record = read_engine_sidecar(built.engine_path)
    assert record.layer_count is None and record.engine_sha256 == hashlib.sha256(built.result.engine).hexdigest()


def test_plan_engine_build_declared_or_probed(onnx_dir, monkeypatch):
    from fcn_edge.engine.engine_file import plan_engine_build

    planned = plan_engine_build(onnx_dir / "tiny_int8-trt8.onnx", trt_version="8.6")
    assert not planned.probed and planned.capabilities.version == "8.6"
    assert planned.plan.builder_flags == ("INT8", "FP16") and planned.facts.precision == "int8"
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("11.4.0.106"))
    planned = plan_engine_build(onnx_dir / "tiny_int8.onnx")
    assert planned.probed and planned.plan.typing == "strong" and planned.plan.network_flags == ()
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(EngineBuildError, match="needs a TensorRT version: --trt-version"):
        plan_engine_build(onnx_dir / "tiny_int8.onnx")


def test_an_onnx_newer_than_the_parser_is_refused_before_building(onnx_dir):
    """TensorRT 8.5/8.6 parse opset 17 at most: the default INT8 file (mixed INT8/FP16 at opset
    19, for 10/11) is refused with the quantize flag that makes one they read."""
    from fcn_edge.engine.engine_file import plan_engine_build

    with pytest.raises(EngineBuildError, match=r"tiny_int8.onnx is ONNX opset 19, and TensorRT 8.6's parser reads "
                       r"up to opset 17: quantize it for TensorRT 8 \(`fcn-edge quantize .* --min-tensorrt 8"):
        plan_engine_build(onnx_dir / "tiny_int8.onnx", trt_version="8.6")
    assert plan_engine_build(onnx_dir / "tiny_int8.onnx", trt_version="10.3").plan.precision == "int8"


def test_fp16_fallback_on_tensorrt_11_says_to_drop_it(onnx_dir):
    with pytest.raises(EngineBuildError) as info:
        build(onnx_dir / "tiny_int8.onnx", "11.4.0.106", BuildConfig(fp16_fallback=True))
    assert "--fp16-fallback" in str(info.value) and "not available on TensorRT 11.4.0.106" in str(info.value)
    assert "drop --fp16-fallback" in str(info.value)


def test_the_engine_layer_imports_neither_tensorrt_nor_the_precision_layer():
    """Every engine module imports without TensorRT, onnx or torch, and never the precision layer
    (the calibration batches are handed in)."""
    import subprocess

    code = (
        "import pkgutil, importlib, sys, fcn_edge.engine as e\n"
        "names = [importlib.import_module('fcn_edge.engine.' + m.name).__name__ for m in pkgutil.iter_modules(e.__path__)]\n"
        "print(len(names), sorted(m for m in ('tensorrt', 'onnx', 'torch', 'fcn_edge.precision') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) >= 11 and loaded.strip() == "[]"


# -- the engine has the precision that was asked for -----------------------------------------------
def test_an_engine_without_the_asked_precision_is_refused(onnx_dir, tmp_path):
    """TensorRT keeps FP32 kernels where the GPU has no fast FP16: the FP16 flag then builds an
    FP32 engine without a word. The inspector's layer precisions show it; the build refuses."""
    from fcn_edge.engine.engine_file import build_engine_file

    trt = make_fake_tensorrt("8.6.1", fast_fp16=False)
    engine = tmp_path / "m.engine"
    with pytest.raises(EngineBuildError) as info:
        build_engine_file(onnx_dir / "tiny_fp32.onnx", engine, BuildConfig(precision="fp16"), trt=trt,
                          device=FakeDevice())
    message = str(info.value)
    assert f"{engine}: an FP16 engine was asked for, but TensorRT 8.6.1 built one in which no layer runs fp16" in message
    assert "fcn-edge quantize tiny_fp32.onnx --precision fp16" in message and "--allow-precision-mismatch" in message
    assert not engine.exists() and not (tmp_path / "m.engine.json").exists()


def test_a_precision_mismatch_can_be_kept_and_is_recorded(onnx_dir, tmp_path, caplog):
    from fcn_edge.engine.engine_file import build_engine_file

    trt = make_fake_tensorrt("8.6.1", fast_fp16=False)
    config = BuildConfig(precision="fp16", allow_precision_mismatch=True)
    built = build_engine_file(onnx_dir / "tiny_fp32.onnx", tmp_path / "m.engine", config, trt=trt, device=FakeDevice())
    assert built.precision_check.verdict == "mismatch" and "kept: --allow-precision-mismatch" in caplog.text
    _, record = read_engine_sidecar(built.engine_path)
    assert record.precision_check == "mismatch" and record.precision_detail.startswith("no layer runs fp16 (layers: fp32")


@pytest.mark.parametrize("variant, version, wanted", [("fp16", "10.3.0", "fp16"), ("int8", "11.4.0.106", "int8"),
                                                      ("fp32", "8.6.1", "fp32")])
def test_the_precision_check_is_recorded(onnx_dir, tmp_path, variant, version, wanted):
    from fcn_edge.engine.engine_file import build_engine_file

    built = build_engine_file(onnx_dir / f"tiny_{variant}.onnx", tmp_path / "m.engine", trt=make_fake_tensorrt(version),
                              device=FakeDevice())
    _, record = read_engine_sidecar(built.engine_path)
    assert record.precision_check == "ok" and record.precision_detail.startswith(f"{wanted} in ")


def test_without_layer_precisions_the_check_is_a_warning(onnx_dir, tmp_path, caplog):
    from fcn_edge.engine.engine_file import build_engine_file

    built = build_engine_file(onnx_dir / "tiny_fp16.onnx", tmp_path / "m.engine", BuildConfig(detailed_profile=False),
                              trt=make_fake_tensorrt("10.3.0"), device=FakeDevice())
    assert built.precision_check.verdict == "unchecked" and "cannot check that the engine runs FP16" in caplog.text
    assert read_engine_sidecar(built.engine_path)[1].precision_check == "unchecked"
