"""The KPI API and dashboard: one ASGI app for `orderpipe serve` and for Lambda."""

from __future__ import annotations

from orderpipe.web.app import create_app
from orderpipe.web.security import Guard

__all__ = ["Guard", "create_app"]
