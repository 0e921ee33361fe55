"""HTTP calls to the services' read and intake endpoints, at the URLs of the command's settings (the local
stack's ports, or OMS_<SERVICE>_URL). Requests carry OMS_API_KEY, or against the local stack its development
keys."""

from __future__ import annotations

from typing import Any

import httpx

from deploy.cli.output import CommandError
from deploy.cli.settings import CliSettings
from deploy.local.keys import Bearer, DevelopmentKeys


def client(settings: CliSettings, service: str, timeout: float = 30.0) -> httpx.Client:
    auth: httpx.Auth
    if settings.api_key:
        auth = Bearer(settings.api_key)
    else:
        try:
            auth = DevelopmentKeys(settings.local.keys_file)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
    return httpx.Client(base_url=settings.urls[service], timeout=timeout, auth=auth)


def get_json(settings: CliSettings, service: str, path: str, params: dict[str, Any] | None = None) -> Any | None:
    """The JSON body, or None for 404."""
    try:
        with client(settings, service) as http:
            response = http.get(path, params={k: v for k, v in (params or {}).items() if v is not None})
    except httpx.HTTPError as exc:
        raise CommandError(f"{service} at {settings.urls[service]} did not answer ({exc.__class__.__name__})") from exc
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise CommandError(f"{service} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def metric_value(settings: CliSettings, service: str, name: str) -> float | None:
    """One unlabelled sample from a service's /metrics."""
    with client(settings, service) as http:
        text = http.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None
