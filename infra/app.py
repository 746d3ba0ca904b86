"""The CDK app: `make synth` (offline), `make deploy`, `make destroy` (processing only),
`make destroy-data` (the data stack too, after a confirmation).

Settings are CDK context values (`-c name=value` or cdk.json): removal (retain | destroy),
table prefix and names, prefixes, categories and an optional alert e-mail.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.data_stack import OrderpipeDataStack
from infra.orderpipe_stack import OrderpipeStack, StackSettings

#: The processing stack (`make destroy` removes it) and the data stack (`make destroy-data`).
STACK = "Orderpipe"
DATA_STACK = "OrderpipeData"


def build_app(context: dict[str, str] | None = None, outdir: str | None = None) -> tuple[cdk.App, OrderpipeStack]:
    app = cdk.App(context=context or {}, outdir=outdir)
    s = StackSettings.from_context(app.node)
    # The tables keep the names they had when both stacks were one: `Orderpipe-<name>`.
    prefix = s.table_prefix or f"{STACK}-"
    data = OrderpipeDataStack(
        app,
        DATA_STACK,
        removal=s.removal,
        table_names=(prefix + s.ledger_table, prefix + s.category_table, prefix + s.order_table),
        description="orderpipe's data: the bucket and the three tables (outlives `make destroy`)",
    )
    stack = OrderpipeStack(app, STACK, settings=s, data=data)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


if __name__ == "__main__":
    application, _ = build_app()
    application.synth()
