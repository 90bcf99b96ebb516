"""perfsim: predict vLLM serving throughput and latency of MoE LLMs on GPUs before renting them."""

__version__ = "0.1.0"
