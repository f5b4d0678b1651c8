"""Shared plumbing: addresses, framing, retry and backoff, TLS contexts, the lab CA, limits."""
