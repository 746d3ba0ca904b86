"""The S3 store on moto's server: uploads into input/ never replace a waiting object."""

from __future__ import annotations

from pathlib import Path

import pytest

import orderpipe.adapters.s3 as s3


@pytest.mark.parametrize("single_put_limit", [s3.SINGLE_PUT_LIMIT, 10])  # a PUT, or parts past the limit
def test_put_new_never_replaces(
    aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, single_put_limit: int
) -> None:
    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", single_put_limit)
    store = s3.S3Store(aws_env["ORDERPIPE_AWS_BUCKET"], tmp_path / "scratch")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("first version, long enough to pass the limit\n")
    second.write_text("second version, long enough to pass the limit\n")
    assert store.put_new(first, "input/x.csv") is True
    assert store.put_new(second, "input/x.csv") is False
    assert store.get_bytes("input/x.csv") == first.read_bytes()
