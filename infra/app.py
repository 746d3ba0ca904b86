"""The CDK app: `make synth` (offline), `make deploy`, `make destroy`.

Settings are CDK context values (`-c name=value` or cdk.json): removal (retain | destroy),
table prefix and names, prefixes, categories and an optional alert e-mail.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.orderpipe_stack import OrderpipeStack, StackSettings


def build_app(context: dict[str, str] | None = None, outdir: str | None = None) -> tuple[cdk.App, OrderpipeStack]:
    app = cdk.App(context=context or {}, outdir=outdir)
    settings = StackSettings.from_context(app.node)
    stack = OrderpipeStack(app, "Orderpipe", settings=settings)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


if __name__ == "__main__":
    application, _ = build_app()
    application.synth()
