"""Upstream LLM providers: pure request builders and stream parsers, one module per provider.

The only module here that does I/O is ``providers.http.client``.
"""
