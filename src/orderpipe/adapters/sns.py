"""SNS notifications: accepted and duplicate files to the success topic, the rest to failure."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orderpipe.adapters.notify import LogNotifier
from orderpipe.logs import log_event
from orderpipe.ports import Notification

__all__ = ["SnsNotifier"]


class SnsNotifier:
    def __init__(self, success_topic: str, failure_topic: str, client: Any = None) -> None:
        self.success_topic = success_topic
        self.failure_topic = failure_topic
        self._client = client
        self.log = LogNotifier()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sns")
        return self._client

    def notify(self, notification: Notification) -> None:
        self.log.notify(notification)
        ok = notification.event in ("accepted", "duplicate")
        topic = self.success_topic if ok else self.failure_topic
        subject = f"orderpipe: {notification.event} {notification.file}"[:99]  # SNS: fewer than 100
        try:
            self.client.publish(
                TopicArn=topic,
                Subject=subject,
                Message=json.dumps(dataclasses.asdict(notification), default=str),
                MessageAttributes={"event": {"DataType": "String", "StringValue": notification.event}},
            )
        except (BotoCoreError, ClientError) as exc:
            log_event(
                "notify.sns_failed",
                logging.ERROR,
                topic=topic,
                error=str(exc),
                file=notification.file,
                hint="the batch itself is processed; check the topic and the task role",
            )
