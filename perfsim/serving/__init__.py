"""Serving simulation: bench-serve workload, vLLM V1 scheduler, SimPy engine processes, metrics."""
