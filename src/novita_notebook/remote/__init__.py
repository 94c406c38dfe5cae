"""Working on instances over SSH (``Novita.remote``): ssh.py keeps one pooled connection per
instance with pinned host keys; the rest builds on it. asyncssh is imported only when a
connection is first opened.
"""
