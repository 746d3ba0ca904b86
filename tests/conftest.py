from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import settings

from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.workflow import Pipeline

HEADER = "order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned"
REPO = Path(__file__).resolve().parents[1]

#: Set only by tests/mutation.py, for the runs of the tests against each mutant: there the same
#: tests run some two thousand times, so they do less (see docs/testing.md, "Mutation testing").
MUTATION = os.environ.get("MUTATION_RUN") == "1"

# Under mutation every run must give the same verdict (a mutant killed by a lucky draw would
# make the score vary between runs), and no run may replay another mutant's failures.
settings.register_profile("mutation", derandomize=True, database=None)
if MUTATION:
    settings.load_profile("mutation")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutation (each run stops at its first failure) the example-based tests run first,
    in a fixed order, and the property tests, which cost the most, last."""
    if MUTATION:
        items.sort(key=lambda item: (getattr(getattr(item, "obj", None), "is_hypothesis_test", False), item.nodeid))


def examples(n: int) -> int:
    """How many examples a property test draws: `n`, a fifth of it under mutation (the tests
    with one flaw of each kind, not the random files, are what kills a mutant there)."""
    return max(10, n // 5) if MUTATION else n


def order(
    order_id: str = "O1",
    customer: str = "C1",
    date: str = "2025-07-06",
    category: str = "Electronics",
    product: str = "P1",
    quantity: str = "1",
    price: str = "10.00",
    returned: str = "false",
) -> str:
    return ",".join([order_id, customer, date, category, product, quantity, price, returned])


def csv_text(rows: Sequence[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def write(path: Path, rows: Sequence[str], header: str = HEADER) -> Path:
    path.write_text(csv_text(rows, header), encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pipeline(home: Path) -> Iterator[Pipeline]:
    yield open_pipeline(load_settings(home, environ={}))


def run_file(pipeline: Pipeline, path: Path):  # type: ignore[no-untyped-def]
    return pipeline.process(pipeline.submit(path))


def snapshot(pipeline: Pipeline) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return pipeline.kpis.daily(None, None), pipeline.kpis.category(None, None, None)


# -- AWS on moto's server ------------------------------------------------------------------------
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _one_dynamodb_request_at_a_time() -> None:
    """moto 5.2.5 applies a DynamoDB request while others run on the same table: a transaction
    copies a table another request is changing ("dictionary changed size during iteration",
    seen in CI) and two transactions' conditions can both pass, which DynamoDB never allows
    (each request is atomic there). Its server handles them one at a time here."""
    import threading

    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "one_at_a_time", False):
        return
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self: object) -> object:
        with lock:
            return original(self)

    call_action.one_at_a_time = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server over HTTP (not in-process mocks); the URL is its endpoint."""
    import os

    from moto.server import ThreadedMotoServer

    _one_dynamodb_request_at_a_time()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in [*AWS_ENV, "AWS_ENDPOINT_URL", "MOTO_PORT"]}
    os.environ.update(AWS_ENV | {"AWS_ENDPOINT_URL": url, "MOTO_PORT": str(port)})
    yield url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def aws_env(moto_server: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Fresh bucket and tables for one test; the ORDERPIPE_* variables that select them."""
    import re
    import uuid

    import boto3

    from orderpipe.adapters.dynamodb import TableNames, create_tables

    suffix = re.sub(r"[^a-z0-9]", "-", request.node.name.lower())[:30] + "-" + uuid.uuid4().hex[:6]
    names = TableNames(f"ledger-{suffix}", f"CategoryKPIs-{suffix}", f"OrderKPIs-{suffix}")
    bucket = f"orders-{suffix}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    create_tables(boto3.client("dynamodb"), names)
    return {
        "ORDERPIPE_BACKEND": "aws",
        "ORDERPIPE_AWS_BUCKET": bucket,
        "ORDERPIPE_AWS_LEDGER_TABLE": names.ledger,
        "ORDERPIPE_AWS_CATEGORY_TABLE": names.category,
        "ORDERPIPE_AWS_ORDER_TABLE": names.order,
    }


# Under mutation only the local variant runs: the mutated code (the core and the workflow) is
# the same above both adapter sets, and the moto server makes the S3 + DynamoDB variant about
# five times slower.
@pytest.fixture(params=["local"] if MUTATION else ["local", "aws"])
def any_pipeline(request: pytest.FixtureRequest, home: Path) -> Pipeline:
    """The same semantics tests on both adapter sets: folder + SQLite, S3 + DynamoDB on moto."""
    env = request.getfixturevalue("aws_env") if request.param == "aws" else {}
    return open_pipeline(load_settings(home, environ=env))


def keys(pipeline: Pipeline, prefix: str) -> list[str]:
    return sorted(k.removeprefix(prefix) for k in pipeline.store.list(prefix))
