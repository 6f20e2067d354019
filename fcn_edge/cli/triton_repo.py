"""``fcn-edge triton-repo MODEL... -o REPO``: a Triton model repository any Triton install serves.

Each MODEL becomes ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/1/model.plan`` (a TensorRT
engine, with its sidecar beside it) or ``1/model.onnx``. Tensors, max batch and ModelMeta (as
the config parameter ``fcn_edge.meta``) come from the model; batching and instances from
the flags. The config is checked against Triton's model-config protobuf before it is written.

Examples:
  fcn-edge triton-repo model.engine -o repo/                 # TensorRT plan, GPU instances
  fcn-edge triton-repo model.onnx -o repo/ --accelerator tensorrt --instances 2
  tritonserver --model-repository=$PWD/repo                   # then, on a camera:
  fcn-edge run /dev/video0 --model triton://SERVER:8001/model
"""

from __future__ import annotations

import argparse
import sys

from fcn_edge.cli.args import ExtendList, add_model_argument, add_out, add_serving_options, comma_items, serving_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "triton-repo",
        help="write a Triton Inference Server model repository (config.pbtxt + engine or ONNX)",
        description=__doc__,
    )
    add_model_argument(p, ".engine (with its .engine.json) or .onnx; several make several models", several=True)
    add_out(p, "the model repository folder (created; other models in it are kept)", required=True, metavar="REPO")
    p.add_argument("--name", type=comma_items, action=ExtendList, metavar="NAME[,NAME...]",
                   help="model name(s) in the repository, one per MODEL (default: the file names)")
    add_serving_options(p, repository=True)
    p.add_argument("--force", action="store_true", help="replace a model folder that exists already")
    p.add_argument("--show-config", action="store_true", help="print each config.pbtxt")
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.serve.repository import write_model_repository

    written = write_model_repository(args.model, args.out, serving_options(args), args.name, args.force)
    for model in written:
        config = model.config
        batching = (f"max batch {config.max_batch_size}, dynamic batching {list(config.preferred_batch)} "
                    f"within {config.queue_delay_us} us" if config.max_batch_size else "no batching")
        print(f"{model.directory(args.out)}: {config.platform} {config.model_file} from {model.source} ({batching}, "
              f"{config.instances} {config.instance_kind} instance(s))")
        for note in model.notes:
            print(f"  note: {note}")
        if args.show_config:
            print(model.config_text)
    repo = args.out.resolve()
    print(f"\nserve it:  tritonserver --model-repository={repo}", file=sys.stderr)
    print(f"  (or: docker run --gpus all --rm -p 8000-8002:8000-8002 -v {repo}:/models "
          "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models)", file=sys.stderr)
    print(f"use it:    fcn-edge run SOURCE --model triton://SERVER:8001/{written[0].name}", file=sys.stderr)
    return 0
