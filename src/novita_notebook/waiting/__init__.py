"""Waiting and watching: the backoff schedule, blocking and async waits, probes and watchers.
Submodules are imported on first use, so ``waiting.backoff`` stays a leaf-only import for http.
"""
