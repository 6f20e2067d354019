"""Every CUDA name fcn-edge uses exists in the installed cuda-python, the way every TensorRT
name is checked against the bindings' surfaces (tests/test_engine_api_surface.py).

The runtime-API names of the cuda-python implementation must resolve in
``cuda.bindings.runtime``; the libcuda symbols that ctypes code calls (the pycuda
implementation's CUDA graphs, the engine layer's driver facts) must be entry points
cuda-bindings itself loads from libcuda. The collector (tests/cuda_usage.py) must find the
names each module is known to use: if it loses track, this fails instead of passing empty.
Needs ``cuda-bindings`` (pip; it installs and imports without a GPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cuda_usage import collect_cuda_names, libcuda_symbols

KNOWN = {
    ("runtime", "fcn_edge/runtime/cuda_python_buffers.py"): {
        "cudaGetDeviceCount", "cudaSetDevice", "cudaMalloc", "cudaHostAlloc", "cudaMemcpyAsync", "cudaStreamCreate",
        "cudaEventElapsedTime", "cudaStreamBeginCapture", "cudaStreamEndCapture", "cudaGraphInstantiateWithFlags",
        "cudaGraphLaunch", "cudaGetLastError", "cudaMemcpyKind.cudaMemcpyHostToDevice",
        "cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal",
    },
    ("libcuda", "fcn_edge/runtime/cuda_buffers.py"): {
        "cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuGraphLaunch", "cuDevicePrimaryCtxRelease_v2",
    },
    ("runtime", "fcn_edge/runtime/cuda_buffers.py"): {"cudaGetLastError", "cudaGetErrorName"},
    ("libcuda", "fcn_edge/engine/cuda_driver.py"): {"cuInit", "cuMemAlloc_v2", "cuMemcpyHtoD_v2", "cuDeviceGetAttribute"},
}


@pytest.fixture(scope="module")
def used():
    return collect_cuda_names()


@pytest.mark.parametrize("api, path", sorted(KNOWN))
def test_the_collector_finds_what_each_module_uses(used, api, path):
    names = {n.dotted for n in used if n.api == api and n.where.startswith(path + ":")}
    missing = KNOWN[(api, path)] - names
    assert not missing, f"the collector lost track of {path}'s {api} names: it missed {sorted(missing)}"


def test_every_runtime_api_name_exists_in_cuda_bindings(used):
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="needs cuda-bindings (pip install cuda-bindings)")
    import cuda.bindings

    absent = []
    checked = sorted({n.dotted: n for n in used if n.api == "runtime"}.values(), key=lambda n: n.dotted)
    for name in checked:
        value = runtime
        for part in name.chain:
            if not hasattr(value, part):
                absent.append(f"{name.where}: cudart.{name.dotted}")
                break
            value = getattr(value, part)
    print(f"\ncuda.bindings {cuda.bindings.__version__}: {len(checked)} runtime-API names used, {len(absent)} missing")
    assert checked and not absent, "\n".join(absent)


def test_every_libcuda_symbol_is_a_driver_entry_point(used):
    bindings = pytest.importorskip("cuda.bindings", reason="needs cuda-bindings (pip install cuda-bindings)")
    pxd = Path(bindings.__file__).parent / "_internal" / "driver.pxd"
    symbols = libcuda_symbols(pxd)
    assert len(symbols) > 300, f"{pxd} lists only {len(symbols)} driver entry points"
    checked = sorted({n.chain[0]: n for n in used if n.api == "libcuda"}.values(), key=lambda n: n.chain[0])
    absent = [f"{n.where}: libcuda.{n.chain[0]}" for n in checked if n.chain[0] not in symbols]
    print(f"\nlibcuda: {len(checked)} symbols used, {len(absent)} not among cuda-bindings' {len(symbols)} entry points")
    assert checked and not absent, "\n".join(absent)


def test_the_check_fails_for_a_name_that_does_not_exist(tmp_path):
    """A misspelt runtime call and a libcuda symbol without its ABI suffix are caught."""
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="needs cuda-bindings (pip install cuda-bindings)")
    import cuda.bindings

    module = tmp_path / "fcn_edge" / "runtime" / "cuda_example.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def f():\n"
        "    cudart = _cudart()\n"
        "    cudart.cudaMallocc(8)\n"
        "    cudart.cudaMemcpyKind.cudaMemcpyHostToDeviceX\n"
        "def g(self):\n"
        "    self._lib.cuMemAlloc(0)\n"
        "    getattr(self._lib, 'cuGraphInstantiate_v2', None)\n"
    )
    found = collect_cuda_names([module], root=tmp_path)
    assert {n.dotted for n in found} == {"cudaMallocc", "cudaMemcpyKind.cudaMemcpyHostToDeviceX", "cuMemAlloc"}
    assert not hasattr(runtime, "cudaMallocc") and not hasattr(runtime.cudaMemcpyKind, "cudaMemcpyHostToDeviceX")
    symbols = libcuda_symbols(Path(cuda.bindings.__file__).parent / "_internal" / "driver.pxd")
    assert "cuMemAlloc" not in symbols and "cuMemAlloc_v2" in symbols
