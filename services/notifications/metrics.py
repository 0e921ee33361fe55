"""Notifications' metrics: messages handed to the mail server by kind, and every delivery attempt by channel,
kind and outcome. Counted after the transaction that records them commits."""

from __future__ import annotations

from prometheus_client import Counter

NOTIFICATIONS_SENT = Counter(
    "oms_notifications_sent_total", "Customer messages handed to the mail server, by kind.", ["kind"]
)
DELIVERIES = Counter(
    "oms_notification_deliveries_total",
    "Attempts to deliver customer messages, by channel (email or webhook:<name>), kind and outcome.",
    ["channel", "kind", "outcome"],
)
