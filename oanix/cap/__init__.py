"""Capability services: files through which an agent reaches the outside world."""
