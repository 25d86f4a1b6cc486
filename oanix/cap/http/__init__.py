"""HTTP as files: HttpFs (the service, here) and HttpExecutor (``executor``: the trio task
that performs its requests under a CapabilityPolicy; it imports httpx, so it is imported
on first use, from ``oanix.cap``)."""

from .service import HttpFs, HttpRequest

__all__ = ["HttpFs", "HttpRequest"]
