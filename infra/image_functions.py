"""Lambda functions that run the processing image (the ECS tasks' own): the small-file function
and the copy function differ only in their handler, size, role and variables."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

__all__ = ["image_function"]


def image_function(
    stack: cdk.Stack,
    name: str,
    *,
    image: ecr_assets.DockerImageAsset,
    handler: str,
    role: iam.IRole,
    memory_mb: int,
    timeout: cdk.Duration,
    storage_mb: int | None = None,
    environment: dict[str, str] | None = None,
) -> lambda_.DockerImageFunction:
    """`<name>Function`, run by Lambda's runtime interface client from the image, writing to a
    log group of its own (`<name>Logs`, 30 days) through `role`. Made in the stack's scope, so
    the logical ids are those the stack always had."""
    log_group = logs.LogGroup(
        stack, f"{name}Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    log_group.grant_write(role)
    return lambda_.DockerImageFunction(
        stack,
        f"{name}Function",
        code=lambda_.DockerImageCode.from_ecr(
            image.repository,
            tag_or_digest=image.image_tag,
            entrypoint=["python", "-m", "awslambdaric"],
            cmd=[handler],
        ),
        architecture=lambda_.Architecture.X86_64,  # the image's platform
        memory_size=memory_mb,
        timeout=timeout,
        ephemeral_storage_size=cdk.Size.mebibytes(storage_mb) if storage_mb is not None else None,
        role=role,
        log_group=log_group,
        environment=environment,
    )
