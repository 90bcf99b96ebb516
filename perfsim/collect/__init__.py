"""Kernel microbenchmarks on the user's own device (``perfsim collect``) and fitting perfsim's size-dependent
efficiency curves to them. PyTorch is needed for GPUs (``pip install 'perfsim[collect]'``); the CPU path uses
numpy so the whole pipeline runs in CI without a GPU."""
