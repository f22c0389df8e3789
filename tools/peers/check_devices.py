"""Runs a peer script on torch's meta device: every op runs for its shapes only, and an op that
mixes a meta tensor with a CPU one (a model or tensor not moved to --device) raises, as it would on
a GPU. Values Python reads (.item(), float(), .tolist()) are faked. For checking the --device
paths on a machine without a GPU:

    python3 tools/peers/check_devices.py tools/peers/torch_bench.py --smoke --device meta
    python3 tools/peers/check_devices.py tools/peers/sweep_bench.py --engines torch-vmap,torch-seq --models 2 --device meta
"""
import os
import runpy
import sys

import torch

item, to_float, tolist = torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.tolist
torch.Tensor.item = lambda t: 0.5 if t.device.type == "meta" else item(t)
torch.Tensor.__float__ = lambda t: 0.5 if t.device.type == "meta" else to_float(t)
torch.Tensor.tolist = lambda t: [0.5] * t.numel() if t.device.type == "meta" else tolist(t)

script = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
