"""Where SMS messages go: the dev outbox, an HTTP gateway, or an operator's own class.

``SMS_GATEWAY`` names one: ``"dev"``, ``"http"`` or ``"package.module:ClassName"`` (made
with no arguments; it reads ``current_app.config`` itself if it needs settings). A
gateway has one method, ``send(message: SmsMessage) -> None``, and raises
``GatewayError`` when the message was not accepted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass

import requests
from flask import current_app

from .. import plugins
from ..identity.masking import mask_phone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsMessage:
    phone: str  # 11-digit national form
    text: str  # the full text, for gateways that send free text
    purpose: str  # login, stepup, ciba …: gateways with fixed templates pick one by it
    code: str
    ttl_minutes: int


class GatewayError(RuntimeError):
    """The gateway did not take the message; the text is safe to log (no phone, no code)."""


class DevOutbox:
    """Appends each message as a JSON line to a file (instance/sms_outbox.log) instead of
    sending it. The file plays the phone's inbox for the demo and the tests, so it holds
    the number and the code; the log line does not."""

    _lock = threading.Lock()

    def __init__(self, path: str | None = None):
        self.path = path or current_app.config.get("SMS_OUTBOX") or os.path.join(
            current_app.instance_path, "sms_outbox.log")

    def send(self, message: SmsMessage) -> None:
        line = json.dumps({"at": time.time(), **asdict(message)}, ensure_ascii=False)
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
        except OSError as exc:
            raise GatewayError(f"dev SMS outbox not writable: {exc.strerror}") from None
        log.info("SMS (dev outbox) to %s purpose=%s", mask_phone(message.phone), message.purpose)


class HttpGateway:
    """POSTs the message as JSON to ``SMS_HTTP_URL``; any 2xx answer means accepted.

    Body: ``{"phone", "text", "purpose", "params": {"code", "minutes"}}`` — enough for
    the usual provincial SMS platforms, which either send free text or fill a template
    chosen by purpose. An adapter in front of a particular vendor maps from this."""

    def __init__(self):
        cfg = current_app.config
        self.url = cfg.get("SMS_HTTP_URL")
        if not self.url:
            raise GatewayError("SMS_GATEWAY is 'http' but SMS_HTTP_URL is not set")
        self.timeout = float(cfg.get("SMS_HTTP_TIMEOUT") or 5.0)
        self.headers = {"Content-Type": "application/json; charset=utf-8"}
        if cfg.get("SMS_HTTP_AUTH_VALUE"):
            self.headers[cfg.get("SMS_HTTP_AUTH_HEADER") or "Authorization"] = (
                cfg["SMS_HTTP_AUTH_VALUE"])

    def send(self, message: SmsMessage) -> None:
        body = {"phone": message.phone, "text": message.text, "purpose": message.purpose,
                "params": {"code": message.code, "minutes": message.ttl_minutes}}
        try:
            resp = requests.post(self.url, data=json.dumps(body, ensure_ascii=False).encode(),
                                 headers=self.headers, timeout=self.timeout)
        except requests.Timeout:
            raise GatewayError(f"SMS gateway timed out after {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise GatewayError(f"SMS gateway unreachable: {type(exc).__name__}") from None
        if not 200 <= resp.status_code < 300:
            raise GatewayError(f"SMS gateway answered HTTP {resp.status_code}")
        log.info("SMS (http) to %s purpose=%s", mask_phone(message.phone), message.purpose)


class NoGateway:
    """No gateway configured: every send fails with a clear reason."""

    def send(self, message) -> None:
        raise GatewayError("SMS_GATEWAY is not configured")


def gateway():
    """The configured gateway, made once per app."""
    try:
        return plugins.load("SMS_GATEWAY", {"dev": DevOutbox, "http": HttpGateway},
                            unset=NoGateway)
    except plugins.PluginError as exc:
        raise GatewayError(str(exc)) from None
