"""The ``webhook`` handler: POST the signed command as JSON to a configured URL.

Configured in ``[executor.webhook]``: ``url`` (http or https), ``timeout_s`` (default 5),
``retries`` (extra attempts after the first, default 2), ``backoff_s`` (first retry delay,
doubled each time, default 0.2) and ``headers``. A 2xx answer is success; 4xx fails at once;
5xx and connection errors are retried, then fail.

>>> WebhookHandler.from_config({"url": "ftp://example.org"})
Traceback (most recent call last):
...
ValueError: executor.webhook.url: 'ftp://example.org' is not an http(s) URL
>>> WebhookHandler.from_config({"url": "http://127.0.0.1:9/x", "retry": 1})
Traceback (most recent call last):
...
ValueError: executor.webhook.retry: unknown setting; known: backoff_s, headers, retries, ...
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from perfloop.schemas.messages import ActionCommand

_SETTINGS = ("backoff_s", "headers", "retries", "timeout_s", "url")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not instructions: a 3xx is a non-2xx failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class WebhookError(RuntimeError):
    """The webhook did not accept the command."""


class WebhookHandler:
    """POSTs each command's JSON to ``url`` with bounded, exponentially backed-off retries."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"executor.webhook.url: {url!r} is not an http(s) URL")
        if not 0 < timeout_s <= 300:
            raise ValueError(f"executor.webhook.timeout_s: {timeout_s!r} not in (0, 300]")
        if not 0 <= retries <= 10:
            raise ValueError(f"executor.webhook.retries: {retries!r} not in [0, 10]")
        if not 0 <= backoff_s <= 60:
            raise ValueError(f"executor.webhook.backoff_s: {backoff_s!r} not in [0, 60]")
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.headers = dict(headers or {})

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> WebhookHandler:
        for key in settings:
            if key not in _SETTINGS:
                raise ValueError(
                    f"executor.webhook.{key}: unknown setting; known: {', '.join(_SETTINGS)}"
                )
        if "url" not in settings:
            raise ValueError("executor.webhook.url: not set, but the webhook handler is used")
        return cls(**settings)

    def worst_case_s(self) -> float:
        """The longest :meth:`apply` can take: every attempt timing out, every backoff."""
        return self.timeout_s * (self.retries + 1) + self.backoff_s * (2**self.retries - 1)

    def apply(self, command: ActionCommand) -> str:
        body = command.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "X-Perfloop-Action-Id": command.action_id,
            **self.headers,
        }
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, body, headers, method="POST")
            try:
                with _OPENER.open(request, timeout=self.timeout_s) as response:
                    status = response.status
                if 200 <= status < 300:
                    return f"POST {self.url} -> {status}"
                raise WebhookError(f"POST {self.url} -> {status}")
            except urllib.error.HTTPError as exc:
                last = f"POST {self.url} -> {exc.code} {exc.reason}"
                exc.close()
                if exc.code < 500:
                    raise WebhookError(last) from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = f"POST {self.url} failed: {getattr(exc, 'reason', exc)}"
        raise WebhookError(f"{last} (after {self.retries + 1} attempts)")
