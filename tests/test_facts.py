"""Names of facts files: a bundle's key read back into its batch and part."""

from __future__ import annotations

import pytest

from orderpipe.facts import BUNDLE, FACTS_PREFIX, HISTORY, bundle_of, fact_key


@pytest.mark.parametrize(
    ("batch_id", "part"),
    [
        ("c4b79232aa", BUNDLE),
        ("c4b79232aa", BUNDLE + 12),
        ("compact-3-17", BUNDLE + 1),
        ("compact-3-17-x9", BUNDLE + 9),
    ],
)
def test_a_bundle_key_gives_back_its_batch_and_part(batch_id: str, part: int) -> None:
    """Batch ids of merged entries hold dashes themselves: the part is what follows the last one."""
    key = fact_key("2025-07-06", batch_id, part)
    assert bundle_of(key) == (batch_id, part)
    assert bundle_of(fact_key("2025-07-06", batch_id, part, "elsewhere/"), "elsewhere/") == (batch_id, part)


@pytest.mark.parametrize(
    "key",
    [
        fact_key("2025-07-06", "c4b79232aa", 0),  # a date's own file
        fact_key("2025-07-06", "compact-3-17", HISTORY),  # a merged entry's history
        f"{FACTS_PREFIX}bundles/batch-c4b79232aa-0001.csv",  # not Parquet
        f"{FACTS_PREFIX}bundles/stray-c4b79232aa-0001.parquet",  # not a batch's
        f"{FACTS_PREFIX}bundles/batch-c4b79232aa-x1.parquet",  # no part number
        f"{FACTS_PREFIX}bundles/batch--0001.parquet",  # no batch id
        f"{FACTS_PREFIX}bundles/batch-0001.parquet",  # no batch id before the part
        "other/bundles/batch-c4b79232aa-0001.parquet",  # under another prefix
    ],
)
def test_any_other_key_is_not_a_bundle(key: str) -> None:
    assert bundle_of(key) is None
