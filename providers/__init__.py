"""Upstream LLM providers: pure request builders and stream parsers, one module per provider.

The only modules here that do I/O are the HTTP client's, ``providers.http.client`` and ``.connection``.
"""
