"""HTTP calls to the services' read and intake endpoints. Each URL defaults to the local port
(shared/backbone/ports.py) and can point elsewhere with OMS_<SERVICE>_URL, e.g. OMS_CAPTURE_URL. Requests carry
OMS_API_KEY, or against the local stack its development keys."""

from __future__ import annotations

import os
from typing import Any

import httpx

from deploy.cli.output import CommandError
from deploy.local.keys import api_auth
from shared.backbone import ports


def service_url(service: str) -> str:
    return os.environ.get(f"OMS_{service.upper()}_URL") or f"http://127.0.0.1:{ports.HTTP[service]}"


def client(service: str, timeout: float = 30.0) -> httpx.Client:
    try:
        auth = api_auth()
    except LookupError as exc:
        raise CommandError(str(exc)) from exc
    return httpx.Client(base_url=service_url(service), timeout=timeout, auth=auth)


def get_json(service: str, path: str, params: dict[str, Any] | None = None) -> Any | None:
    """The JSON body, or None for 404."""
    try:
        with client(service) as http:
            response = http.get(path, params={k: v for k, v in (params or {}).items() if v is not None})
    except httpx.HTTPError as exc:
        raise CommandError(f"{service} at {service_url(service)} did not answer ({exc.__class__.__name__})") from exc
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise CommandError(f"{service} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def metric_value(service: str, name: str) -> float | None:
    """One unlabelled sample from a service's /metrics."""
    with client(service) as http:
        text = http.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None
