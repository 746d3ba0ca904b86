"""The read-only KPI API and the dashboard: an HTTP API (GET and HEAD only, throttled,
access-logged) in front of one Lambda function running the same app as `orderpipe serve`, whose
role can only read the KPI tables, their by_date index and the ledger (GetItem and Query).

Who may read, by `api_auth`:
- `cognito` (the default): people, in a browser. A user pool (accounts made by an
  administrator, a one-time code from an authenticator app required) and an app client for the
  page. The page itself (`/`, `/static/...`) holds no data and opens without a token; every other
  path needs the pool's access token, which API Gateway's JWT authorizer checks.
- `iam`: programs. Every route, the page included, needs a SigV4-signed request.

The resources are made in the stack's own scope, so their logical ids (and the API's URL) stay
what they were when this code lived in the stack's module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from infra.api_package import build_api_package
from infra.cdk_helpers import acknowledge

__all__ = ["API_AUTH", "OPEN_PATHS", "KpiApi", "add_kpi_api"]

API_AUTH = ("cognito", "iam")
#: The page's own files: no data, served without a token when people sign in.
OPEN_PATHS = ("/", "/static/{proxy+}")
#: An access token's life: API Gateway takes it until then, even after a sign-out revoked it.
ACCESS = cdk.Duration.minutes(15)
#: How long a signed-in tab may renew its access token without signing in again.
SESSION = cdk.Duration.hours(12)


@dataclass(frozen=True)
class KpiApi:
    url: str
    function: lambda_.Function


def add_kpi_api(
    stack: cdk.Stack,
    *,
    auth: str,
    rate_limit: int,
    burst_limit: int,
    categories: str,
    runtime: lambda_.Runtime,
    bucket: s3.IBucket,
    tables: tuple[ddb.ITable, ddb.ITable, ddb.ITable],
) -> KpiApi:
    """`tables`: the ledger, the category KPIs and the order KPIs."""
    ledger, category, order = tables
    environment = {
        "ORDERPIPE_BACKEND": "aws",
        "ORDERPIPE_HOME": "/tmp/orderpipe",
        "ORDERPIPE_AWS_BUCKET": bucket.bucket_name,  # required by the settings; never read
        "ORDERPIPE_AWS_LEDGER_TABLE": ledger.table_name,
        "ORDERPIPE_AWS_CATEGORY_TABLE": category.table_name,
        "ORDERPIPE_AWS_ORDER_TABLE": order.table_name,
        "ORDERPIPE_CATEGORIES": categories,
    }
    function = lambda_.Function(
        stack,
        "Api",
        runtime=runtime,
        handler="orderpipe.web.lambda_api.handler",
        code=lambda_.Code.from_asset(str(build_api_package())),
        memory_size=512,
        timeout=cdk.Duration.seconds(10),
        environment=environment,
        log_group=logs.LogGroup(
            stack, "ApiLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
        ),
    )
    arns = [ledger.table_arn, category.table_arn, order.table_arn]
    indexes = [f"{category.table_arn}/index/by_date", f"{order.table_arn}/index/by_date"]
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:Query"], resources=[*arns, *indexes])
    )

    authorizer: apigw.IHttpRouteAuthorizer
    open_paths: tuple[str, ...] = ()
    if auth == "cognito":
        pool, client = _user_pool(stack)
        authorizer = authorizers.HttpUserPoolAuthorizer("Users", pool, user_pool_clients=[client])
        function.add_environment("SIGN_IN_USER_POOL_ID", pool.user_pool_id)
        function.add_environment("SIGN_IN_CLIENT_ID", client.user_pool_client_id)
        open_paths = OPEN_PATHS
    else:
        authorizer = authorizers.HttpIamAuthorizer()
    api = apigw.HttpApi(
        stack,
        "KpiApi",
        description="orderpipe: read-only KPI API and dashboard",
        create_default_stage=False,
    )
    integration = integrations.HttpLambdaIntegration("ApiIntegration", function)
    for path in ("/", "/static/{proxy+}", "/{proxy+}"):
        if path == "/static/{proxy+}" and not open_paths:
            continue  # behind IAM `/{proxy+}` covers it
        routes = api.add_routes(
            path=path,
            methods=[apigw.HttpMethod.GET, apigw.HttpMethod.HEAD],
            integration=integration,
            authorizer=apigw.HttpNoneAuthorizer() if path in open_paths else authorizer,
        )
        for route in routes if path in open_paths else ():
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "The dashboard's page and its scripts: no data, and the page signs its user in; "
                "every /api/ route takes the user pool's token.",
            )
    stage = apigw.HttpStage(
        stack,
        "KpiApiStage",
        http_api=api,
        stage_name="$default",
        auto_deploy=True,
        throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
    )
    _log_requests(stack, stage)
    return KpiApi(stage.url, function)


def _user_pool(stack: cdk.Stack) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
    """Staff accounts: made by an administrator (no self sign-up), a strong password, a code
    from an authenticator app at every sign-in. The page's client signs in with the password
    over TLS (USER_PASSWORD_AUTH) and renews with the refresh token, which sign-out revokes; it
    has no secret (a page cannot keep one) and no OAuth flow."""
    pool = cognito.UserPool(
        stack,
        "ApiUsers",
        self_sign_up_enabled=False,
        sign_in_aliases=cognito.SignInAliases(email=True),
        mfa=cognito.Mfa.REQUIRED,
        mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
        password_policy=cognito.PasswordPolicy(
            min_length=12,
            require_digits=True,
            require_lowercase=True,
            require_symbols=True,
            require_uppercase=True,
        ),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    acknowledge(
        pool,
        "AwsSolutions-COG8",
        "Staff accounts created by an administrator (no self sign-up), MFA required; the Plus "
        "tier's threat protection is a per-user cost the operator may turn on.",
    )
    client = pool.add_client(
        "ApiClient",
        auth_flows=cognito.AuthFlow(user_password=True),
        generate_secret=False,
        disable_o_auth=True,  # no hosted sign-in, no redirects: the page signs in through the API
        prevent_user_existence_errors=True,
        enable_token_revocation=True,
        auth_session_validity=cdk.Duration.minutes(15),  # time to install an authenticator app
        access_token_validity=ACCESS,
        id_token_validity=ACCESS,
        refresh_token_validity=SESSION,
    )
    cdk.CfnOutput(stack, "ApiUserPoolId", value=pool.user_pool_id)
    cdk.CfnOutput(stack, "ApiUserPoolClientId", value=client.user_pool_client_id)
    return pool, client


def _log_requests(stack: cdk.Stack, stage: apigw.HttpStage) -> None:
    """One JSON line per request, kept 30 days."""
    access = logs.LogGroup(
        stack, "ApiAccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    fields = {
        "requestId": "$context.requestId",
        "time": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "user": "$context.authorizer.claims.sub",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "error": "$context.error.message",
    }
    cfn_stage = stage.node.default_child
    assert isinstance(cfn_stage, apigw.CfnStage)
    cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
        destination_arn=access.log_group_arn, format=json.dumps(fields)
    )
