"""The DynamoDB ledger on moto's server: a commit DynamoDB can never accept is not transient."""

from __future__ import annotations

import pytest

from orderpipe.adapters.dynamodb import DynamoLedger
from orderpipe.errors import OrderpipeError, TransientError


def test_a_commit_over_the_item_size_limit_is_refused_for_good(aws_env: dict[str, str]) -> None:
    ledger = DynamoLedger(aws_env["ORDERPIPE_AWS_LEDGER_TABLE"])
    # An item over 400 KB (as a batch spanning ~30,000 dates would make); a long name is cheaper.
    with pytest.raises(OrderpipeError) as caught:
        ledger.commit("f" * 64, "x" * 420_000 + ".csv", 1, {"2025-07-06": [0]})
    assert not isinstance(caught.value, TransientError)
    assert ledger.get("f" * 64) is None
