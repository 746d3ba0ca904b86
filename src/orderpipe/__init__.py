"""orderpipe: exact daily KPIs from e-commerce order files, exactly once."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
