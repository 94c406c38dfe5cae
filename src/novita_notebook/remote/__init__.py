"""Working on instances over SSH (``Novita.remote``): ssh.py keeps one pooled connection per
instance with pinned host keys; runs.py and launch.py make durable runs on it (values.py for
put/get, store.py remembers them). asyncssh is imported only when a connection is first opened.
"""
