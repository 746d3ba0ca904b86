"""Adapters: the ports implemented on a folder, SQLite, logs and webhooks (and AWS later)."""
