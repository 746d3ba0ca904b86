"""The API's Lambda package holds what the handler imports, and no Polars: it imports with
only the standard library besides (`python -S`: no site-packages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.api_package import build_api_package


def test_the_api_package_imports_on_its_own(tmp_path: Path) -> None:
    package = build_api_package(tmp_path / "api")
    probe = (
        f"import sys; sys.path[:0] = [{str(package)!r}]; "
        "import orderpipe.web.lambda_api, orderpipe.web.app, mangum, starlette; "
        "print(sorted(m for m in ('polars', 'httpx', 'click', 'uvicorn', 'boto3') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-S", "-I", "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    size = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
    assert size < 5_000_000, size
