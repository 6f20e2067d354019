"""Hostile metadata: no ModelMeta, engine record or sidecar content may produce a traceback.

Whatever JSON reaches fcn-edge from a file (hand-edited, truncated, written by another tool),
reading it either gives a valid object or raises MetaError naming the file and the field.
"""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fcn_edge.artifacts import EngineRecord, ModelMeta, ProfileShapes, check_engine_compatible, read_engine_sidecar  # noqa: E402
from fcn_edge.artifacts.sidecar import sidecar_path  # noqa: E402
from fcn_edge.errors import EngineMismatchError, MetaError  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)

VALID_META = ModelMeta("fcn8s_tiny", ("background", "road"), ((0, 0, 0), (128, 64, 128)), min_size=(16, 16),
                       max_size=(512, 640), max_batch=4).to_dict()
# a fused-resize model: uint8 frames of 120x160 .. 1080x1920 resized in the graph to 256x320
VALID_RESIZE_META = ModelMeta("fcn8s_tiny", ("background", "road"), ((0, 0, 0), (128, 64, 128)), input_size=(256, 320),
                              input_layout="NHWC", input_dtype="uint8", channel_order="BGR", frame_size=(480, 640),
                              frame_min_size=(120, 160), frame_max_size=(1080, 1920)).to_dict()
VALID_RECORD = EngineRecord(
    tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", precision="int8", typing="strong",
    flags=("NetworkDefinitionCreationFlag.STRONGLY_TYPED",),
    profiles=(ProfileShapes("input", (1, 3, 16, 16), (1, 3, 256, 320), (4, 3, 512, 640)),),
    onnx_path="m.int8.onnx", onnx_sha256="ab" * 32, build_seconds=12.5, built_at="2026-11-29T00:00:00Z",
    int8_mode="explicit", engine_bytes=10, engine_sha256="cd" * 32,
).to_dict()


def _reads_or_refuses(read, data):
    try:
        return read(data)
    except MetaError as exc:
        assert "\n" not in str(exc) and str(exc)  # one line, never empty
        return None


@FUZZ
@given(json_values)
def test_any_json_as_model_meta_is_read_or_refused(value):
    _reads_or_refuses(lambda d: ModelMeta.from_dict(d, "m.onnx"), value)


@FUZZ
@given(st.sampled_from([VALID_META, VALID_RESIZE_META]), st.sampled_from(sorted(VALID_RESIZE_META)), json_values)
def test_a_valid_meta_with_one_hostile_field(valid, key, value):
    data = dict(valid, **{key: value})
    meta = _reads_or_refuses(lambda d: ModelMeta.from_dict(d, "m.onnx"), data)
    if meta is not None:  # accepted: then it really is valid and round-trips
        assert ModelMeta.from_dict(meta.to_dict(), "again") == meta


@FUZZ
@given(st.sampled_from(sorted(VALID_RECORD)), json_values)
def test_a_valid_engine_record_with_one_hostile_field(key, value):
    data = dict(VALID_RECORD, **{key: value})
    record = _reads_or_refuses(lambda d: EngineRecord.from_dict(d, "m.engine.json"), data)
    if record is not None:
        try:
            check_engine_compatible(record, "10.3.0", "Orin", (8, 7))
        except EngineMismatchError as exc:
            assert "rebuild" in str(exc)


@FUZZ
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_sidecar_file_is_read_or_refused(tmp_path, content):
    engine = tmp_path / "m.engine"
    sidecar_path(engine).write_bytes(content)
    _reads_or_refuses(read_engine_sidecar, engine)


@pytest.mark.parametrize("key, value, message", [
    ("compute_capability", 87, "engine.compute_capability must be a non-empty string, got 87"),
    ("compute_capability", "8", "engine.compute_capability must be a compute capability like '8.7'"),
    ("profiles", [{"input": "input", "min": "abc", "opt": [1], "max": [1]}], "engine.profiles[0].min must be a list"),
    ("profiles", [{"input": "x", "min": [1, 3, 64, 64], "opt": [1, 3, 32, 32], "max": [1, 3, 64, 64]}],
     "engine.profiles[0].opt must be between min and max"),
    ("build_seconds", float("nan"), "engine.build_seconds must be a finite number"),
    ("dla_core", -1, "engine.dla_core must be an integer >= 0"),
    ("typing", "medium", "engine.typing must be one of 'strong', 'weak'"),
])
def test_hostile_sidecars_name_the_file_and_the_field(tmp_path, key, value, message):
    engine = tmp_path / "m.engine"
    data = {"meta": VALID_META, "engine": dict(VALID_RECORD, **{key: value})}
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(MetaError) as info:
        read_engine_sidecar(engine)
    assert str(info.value).startswith(f"{sidecar_path(engine)}: {message}"), str(info.value)
