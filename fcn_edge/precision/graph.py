"""Read-only views of an ONNX graph that Q/DQ placement and FP16 conversion need."""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

WEIGHTED_OPS = ("Conv", "ConvTranspose")
# Ops that read only a tensor's shape, never its values: they neither need a quantised
# input nor keep a producer from fusing with its one real consumer.
SHAPE_OPS = ("Shape", "Size")


class GraphIndex:
    """Producers, consumers and constants of one ``onnx.GraphProto``.

    Constant values are converted to numpy only when asked for: a VGG16 holds 540 MB of
    weights, and a second copy of all of them would double calibration's peak memory.
    """

    def __init__(self, graph, producer, consumers, constant_protos, graph_outputs, graph_inputs):
        self.graph = graph
        self.producer: Dict[str, object] = producer
        self.consumers: Dict[str, List[object]] = consumers
        self._constant_protos: Dict[str, object] = constant_protos
        self.graph_outputs = graph_outputs
        self.graph_inputs = graph_inputs

    @classmethod
    def build(cls, graph) -> "GraphIndex":
        producer: Dict[str, object] = {}
        consumers: Dict[str, List[object]] = {}
        protos: Dict[str, object] = {init.name: init for init in graph.initializer}
        for node in graph.node:
            for out in node.output:
                producer[out] = node
            for name in node.input:
                if name:
                    consumers.setdefault(name, []).append(node)
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        protos[node.output[0]] = attr.t
        return cls(
            graph, producer, consumers, protos,
            graph_outputs={o.name for o in graph.output},
            graph_inputs={i.name for i in graph.input if i.name not in protos},
        )

    def is_constant(self, name: str) -> bool:
        return name in self._constant_protos

    def constant(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self._constant_protos[name])

    def op_of(self, name: str) -> Optional[str]:
        node = self.producer.get(name)
        return node.op_type if node is not None else None

    def single_consumer(self, name: str):
        users = self.consumers.get(name, [])
        if len(users) == 1 and name not in self.graph_outputs:
            return users[0]
        return None

    def data_consumers(self, name: str) -> List[object]:
        """Consumers that read ``name``'s values (``Shape``/``Size`` read only its shape)."""
        return [n for n in self.consumers.get(name, []) if n.op_type not in SHAPE_OPS]

    def single_data_consumer(self, name: str):
        """The one node reading ``name``'s values, or None (several, none, or a graph output)."""
        users = self.data_consumers(name)
        if len(users) == 1 and name not in self.graph_outputs:
            return users[0]
        return None

    def data_inputs(self, node) -> List[str]:
        """``node``'s non-constant, non-empty inputs: the tensors computed at run time."""
        return [name for name in node.input if name and not self.is_constant(name)]


def attribute(node, name: str, default=None):
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def weighted_nodes(index: GraphIndex) -> List[object]:
    """Conv / ConvTranspose nodes whose weight is a constant (the ones we can quantise)."""
    return [
        node for node in index.graph.node
        if node.op_type in WEIGHTED_OPS and len(node.input) > 1 and index.is_constant(node.input[1])
    ]


def output_path_nodes(index: GraphIndex) -> List[object]:
    """Weighted nodes on the final path: their output reaches a graph output without
    passing through another weighted node (FCN's last upsampling, before crop/argmax)."""
    found = []
    for node in weighted_nodes(index):
        frontier, seen = [node.output[0]], set()
        reaches = False
        while frontier and not reaches:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in index.graph_outputs:
                reaches = True
                break
            for user in index.consumers.get(name, []):
                if user.op_type in WEIGHTED_OPS:
                    continue
                frontier.extend(user.output)
        if reaches:
            found.append(node)
    return found


def input_path_nodes(index: GraphIndex) -> List[object]:
    """Nodes from the graph inputs up to and including the first weighted node(s): the
    fused preprocessing, if any, and the first conv, which reads the image itself."""
    found, seen = [], set()
    frontier = list(index.graph_inputs)
    while frontier:
        tensor = frontier.pop()
        for user in index.consumers.get(tensor, []):
            if id(user) in seen:
                continue
            seen.add(id(user))
            found.append(user)
            if user.op_type not in WEIGHTED_OPS:
                frontier.extend(user.output)
    return found


def ancestor_depths(index: GraphIndex, tensor: str, limit: int = 10000) -> Dict[int, int]:
    """id(node) -> fewest nodes between ``tensor`` and that ancestor (its producer is 0)."""
    depths: Dict[int, int] = {}
    frontier = [(tensor, 0)]
    while frontier and len(depths) < limit:
        next_frontier = []
        for name, depth in frontier:
            node = index.producer.get(name)
            if node is None or id(node) in depths:
                continue
            depths[id(node)] = depth
            next_frontier.extend((i, depth + 1) for i in index.data_inputs(node))
        frontier = next_frontier
    return depths


def branch_lengths(index: GraphIndex, a: str, b: str) -> Optional[tuple]:
    """(path length from ``a``, from ``b``) to their nearest common ancestor, or None when
    they share none: the residual (skip) input of an Add is the one with the shorter path."""
    da, db = ancestor_depths(index, a), ancestor_depths(index, b)
    common = set(da) & set(db)
    if not common:
        return None
    best = min(common, key=lambda k: (max(da[k], db[k]), da[k] + db[k]))
    return da[best], db[best]
