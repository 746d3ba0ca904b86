"""The API's Lambda package, assembled at synthesis from the virtualenv: orderpipe's source and
the pure-Python libraries the API imports (pinned in pyproject.toml), nothing else: no Polars,
no build step, no Docker. boto3 comes with the Lambda runtime."""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from pathlib import Path

__all__ = ["API_LIBRARIES", "build_api_package"]

ROOT = Path(__file__).resolve().parents[1]
#: What `orderpipe.web.lambda_api` needs beyond the standard library and boto3.
API_LIBRARIES = ("starlette", "anyio", "idna", "typing_extensions", "mangum")


def build_api_package(target: Path | None = None) -> Path:
    """Copy the package into `target` (a new temporary folder by default) and return it."""
    target = target or Path(tempfile.mkdtemp(prefix="orderpipe-api-"))
    shutil.copytree(
        ROOT / "src" / "orderpipe", target / "orderpipe", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in API_LIBRARIES:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            parts = Path(str(file)).parts
            if parts[0] in ("..", "bin") or file.suffix == ".pyc" or "__pycache__" in parts:
                continue
            destination = target / Path(str(file))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(dist.locate_file(file))), destination)
    return target
