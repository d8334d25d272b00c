"""Helpers for testing thresher and code that uses it: a misbehaving OpenAI-compatible server."""
