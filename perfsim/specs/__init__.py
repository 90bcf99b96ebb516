"""Validated specs: hardware (YAML), models (HF config + quantization recipe), deployment (vLLM flags)."""
