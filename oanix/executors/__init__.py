"""Executors: the host-side workers that perform what capability files ask for."""
