"""Cost model: memory plan and the time of one engine step, by operator (no SimPy here)."""
