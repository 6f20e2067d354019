#!/usr/bin/env python3
"""Regenerate the shipped default ONNX from the shipped checkpoint, as `make demo` exports it.

    python tools/make_default_onnx.py            # rewrite fcn_edge/weights/fcn8s_mobilenetv3_synthetic.onnx
    python tools/make_default_onnx.py --check    # exit 1 when the ONNX is not the checkpoint's export

The checkpoint ``fcn_edge/weights/fcn8s_mobilenetv3_synthetic.pt`` goes through the real
exporter with the demo's deployment settings (:func:`fcn_edge.demo.deployment_export_config`:
uint8 NHWC BGR frames in, uint8 class mask out, dynamic batch up to 4, sizes 128x160 ..
512x640 around the trained 256x320), with the parity check against PyTorch on. Run it
after retraining the default model or changing the exporter; tests/test_runtime_default_model.py
fails until the ONNX is regenerated (its ModelMeta source_hash must be the .pt's SHA-256).
Needs torch, onnx and onnxruntime (``pip install 'fcn-edge[export]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write here instead of the package's weights folder")
    parser.add_argument("--check", action="store_true",
                        help="only check that the shipped ONNX was exported from the shipped checkpoint")
    args = parser.parse_args(argv)

    from fcn_edge.artifacts import file_sha256, read_onnx_meta
    from fcn_edge.errors import FcnEdgeError
    from fcn_edge.weights import DEFAULT_ONNX_NAME, default_checkpoint, weights_dir

    checkpoint = default_checkpoint()
    out = args.out or weights_dir() / DEFAULT_ONNX_NAME
    if args.check:
        try:
            source_hash = read_onnx_meta(out).source_hash
        except FcnEdgeError as exc:
            print(f"make_default_onnx: {exc}", file=sys.stderr)
            return 1
        wanted = file_sha256(checkpoint)
        if source_hash != wanted:
            print(f"make_default_onnx: {out} was exported from a checkpoint with sha256 {source_hash or '(none)'}, "
                  f"not from {checkpoint.name} ({wanted}); run python tools/make_default_onnx.py", file=sys.stderr)
            return 1
        print(f"{out} is the export of {checkpoint.name} (sha256 {wanted[:12]})")
        return 0

    from fcn_edge.demo import deployment_export_config
    from fcn_edge.export import export_checkpoint
    from fcn_edge.models.checkpoint import load_checkpoint

    config = deployment_export_config(load_checkpoint(checkpoint).meta.input_size)
    report = export_checkpoint(checkpoint, out, config)
    meta = report.meta
    lo, _, hi = meta.size_range
    print(f"wrote {report.path} ({report.file_bytes / 2**20:.1f} MiB, {report.nodes_final} nodes, "
          f"{report.seconds:.1f} s)")
    print(f"  {meta.architecture}, {meta.num_classes} classes; {meta.input_dtype} {meta.input_layout} "
          f"{meta.channel_order} in, {meta.output_dtype} {meta.output_kind} out; sizes {lo[0]}x{lo[1]} .. "
          f"{hi[0]}x{hi[1]} (opt {meta.input_size[0]}x{meta.input_size[1]}), batch up to {meta.max_batch}")
    print(f"  source sha256 {meta.source_hash}; heads: {report.heads}")
    print(f"  parity: network vs PyTorch max abs diff {report.parity.max_abs_diff:.3g}, argmax agreement "
          f"{report.parity.argmax_agreement:.4%}; graph vs host preprocessing and argmax, mask agreement "
          f"{report.head_parity.argmax_agreement:.4%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
