"""``fcn-edge serve [MODEL]``: serve a model from a real Triton Inference Server, through PyTriton.

MODEL is an .engine, .onnx or .pt (default: the built-in model's ONNX). Clients anywhere use
it as ``--model triton://HOST:8001/NAME``: Triton batches the requests of all clients
(dynamic batching), and the model's config carries its ModelMeta, as a repository written by
``fcn-edge triton-repo`` does. Health: http://HOST:8000/v2/health/ready; Prometheus metrics:
http://HOST:8002/metrics; statistics: http://HOST:8000/v2/models/NAME/stats. Ctrl-C or
SIGTERM stops the server cleanly. Clients on this machine pass tensors through system shared
memory when the server listens on loopback only (--host 127.0.0.1); PyTriton keeps that API,
model loading, tracing and logging behind its access token otherwise.

PyTriton's Python backend needs an interpreter with a shared libpython: run this from a venv
made with Debian's /usr/bin/python3 (not a pyenv build without --enable-shared):
  /usr/bin/python3 -m venv ~/triton-venv && ~/triton-venv/bin/pip install 'fcn-edge[serve]'
  ~/triton-venv/bin/fcn-edge serve model.onnx --name fcn
"""

from __future__ import annotations

import argparse
import sys

from fcn_edge.cli.args import (
    add_backend_options, add_model_argument, add_serving_options, load_options, model_or_default,
    non_negative_int, serving_options,
)


def _port(text: str) -> int:
    value = non_negative_int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {text}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="serve a model from a Triton Inference Server started here (PyTriton); clients use triton://",
        description=__doc__,
    )
    add_model_argument(p, ".engine, .onnx or .pt (default: the built-in default model)", optional=True)
    p.add_argument("--name", metavar="NAME", help="the model's name on the server (default: the file name)")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: every interface)")
    net.add_argument("--http-port", type=_port, default=8000, metavar="PORT", help="HTTP/REST and health (default 8000)")
    net.add_argument("--grpc-port", type=_port, default=8001, metavar="PORT", help="gRPC (default 8001)")
    net.add_argument("--metrics-port", type=_port, default=8002, metavar="PORT", help="Prometheus metrics (default 8002)")
    add_serving_options(p, repository=False)
    add_backend_options(p)
    p.set_defaults(input_size=None)  # the server runs whatever sizes the clients send, within the model's range
    return p


def run(args: argparse.Namespace) -> int:
    from fcn_edge.serve.server import ModelServer, ServeConfig, serve_until_signalled

    config = ServeConfig(
        name=args.name, host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
        metrics_port=args.metrics_port, serving=serving_options(args), load=load_options(args),
        verbose=args.verbose,
    )
    with ModelServer(model_or_default(args.model), config) as server:
        model = server.model_config
        ends = server.endpoints
        batching = (f"dynamic batching up to {model.max_batch_size} (preferred {list(model.preferred_batch)}, "
                    f"queue delay {model.queue_delay_us} us)" if model.max_batch_size else "no batching")
        print(f"serving {model.name}: {server.segmenters[0].description}; {batching}; "
              f"{model.instances} instance(s)", file=sys.stderr)
        print(f"  gRPC     --model {ends['grpc']}", file=sys.stderr)
        print(f"  HTTP     --model {ends['http']}", file=sys.stderr)
        print(f"  health   {ends['ready']}  (live: {ends['live']})", file=sys.stderr)
        print(f"  metrics  {ends['metrics']}   statistics: {ends['statistics']}", file=sys.stderr)
        if not args.verbose:
            print(f"  log      {server.log_file}", file=sys.stderr)
        print("Ctrl-C or SIGTERM stops the server.", file=sys.stderr, flush=True)
        reason = serve_until_signalled(server)
        print(f"{reason}: stopping the server", file=sys.stderr, flush=True)
    print("stopped", file=sys.stderr)
    return 0
