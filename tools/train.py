#!/usr/bin/env python3
"""Train a segmentation model: the same as ``fcn-edge train`` (see --help).

The shipped default model was made with (1226 s on a 2-core CPU shared with other jobs;
val mean IU 71.3 %, pixel accuracy 91.1 %; see fcn_edge/weights/*.json):

    python tools/train.py --model fcn8s_mobilenetv3 --data synthetic --input-size 256x320 \
        --crop-size 128x160 --batch-size 8 --iters 1600 --lr 0.002 --threads 1 --val-every 400 \
        --out runs/default --quiet
    cp runs/default/model.pt fcn_edge/weights/fcn8s_mobilenetv3_synthetic.pt
"""

import sys

from fcn_edge.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train"] + sys.argv[1:]))
