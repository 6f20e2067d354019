"""``fcn-edge doctor``: what this machine can do and whether it is set up right.

:func:`run_doctor` returns a :class:`DoctorReport` of :class:`Check` results, each a verdict
(ok / absent / warn / fail), what was found and the fix: the machine (:mod:`.machine`:
Jetson, power mode, Python environment, GPU and driver, TensorRT, pycuda and cuda-python,
trtexec, ONNX Runtime, OpenCV's video backends, DLA), then, where TensorRT and a GPU are
here, engines built, checked, run, compared with ONNX Runtime and timed per precision
(:mod:`.engines`). Nothing here imports TensorRT, CUDA or torch until a check needs it.
"""

from fcn_edge.doctor.check import VERDICTS, Check, DoctorReport
from fcn_edge.doctor.runner import DoctorConfig, run_doctor

__all__ = ["VERDICTS", "Check", "DoctorConfig", "DoctorReport", "run_doctor"]
