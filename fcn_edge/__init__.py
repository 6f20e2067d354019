"""fcn-edge: FCN semantic segmentation from PyTorch to ONNX, TensorRT and the edge.

Importing the package is cheap: every heavy dependency (torch, onnx, onnxruntime,
tensorrt, pycuda) is imported inside the function that needs it.
"""

__version__ = "0.1.0"
