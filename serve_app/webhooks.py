"""Webhooks: a finished task POSTed to its `callback_url`, signed per the Standard Webhooks spec.

Off unless `webhook_allowed_hosts` names hosts (no request forgery by default). A URL is checked
twice: at task creation (scheme, host in the allow-list, a literal address that is not
link-local or a cloud metadata endpoint; else a 422 naming body.callback_url, nothing stored)
and before each POST (the host's addresses as resolved then, so a name cannot be pointed at the
metadata service later). `*` allows any host whose addresses are all public; link-local and
metadata addresses are refused unless an IP or network entry of the allow-list covers them.

The body is the task exactly as `GET /api/tasks/{id}` shows it. Each attempt is signed anew
(`webhook-id` stays the same across retries, `webhook-timestamp` is the attempt's); redirects are
not followed. A 2xx delivers; a transport error, 408, 429 or 5xx is retried with exponential
backoff and jitter (tenacity) until `webhook_max_attempts` or `webhook_retry_window_s`; another
status fails at once. State, attempts, last status and last error are written to the task after
every attempt. Delivery runs on the ingress replica that finished the task; if that replica
dies mid-delivery the webhook is not resumed elsewhere (its state shows where it stopped).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from serve_app.config import Settings
from serve_app.metrics import record_webhook_delivery

logger = logging.getLogger("ray.serve")

CALLBACK_FIELD = "body.callback_url"
MAX_BACKOFF_S = 60.0
RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx
# vss_webhook_deliveries_total's outcome for a delivery's state when it is recorded: after an
# attempt to be retried ("delivering"), after the last one, or when the URL was refused.
ATTEMPT_OUTCOMES = {"delivering": "retrying", "delivered": "delivered", "failed": "failed"}
USER_AGENT = "video-script-serve-webhooks/1"
# Cloud instance-metadata endpoints outside link-local space (AWS IPv6, Alibaba).
METADATA_ADDRESSES = frozenset(map(ipaddress.ip_address, ("fd00:ec2::254", "100.100.100.200")))

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CallbackRefused(ValueError):
    """A callback URL the service will not call; the message says why."""


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_forbidden(address: Address) -> bool:
    """Link-local (169.254.0.0/16, fe80::/10: where 169.254.169.254 lives) or metadata."""
    return address.is_link_local or address in METADATA_ADDRESSES


@dataclass(frozen=True)
class HostPolicy:
    """Which callback hosts, and which addresses behind them, the service may call."""

    any_public: bool
    names: frozenset[str]
    suffixes: tuple[str, ...]  # "*.example.com" → ".example.com"
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: list[str]) -> HostPolicy:
        names, suffixes, networks, any_public = set(), [], [], False
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if entry == "*":
                any_public = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    names.add(entry)
        return cls(any_public, frozenset(names), tuple(suffixes), tuple(networks))

    @property
    def enabled(self) -> bool:
        return self.any_public or bool(self.names or self.suffixes or self.networks)

    def _in_networks(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def check_url(self, url: str) -> str:
        """The URL's host when the service may call it, else CallbackRefused saying why."""
        if not self.enabled:
            raise CallbackRefused(
                "webhooks are off on this service (webhook_allowed_hosts is empty)"
            )
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise CallbackRefused("must be an http or https URL with a host")
        address = _address(host)
        if address is not None:
            if self._in_networks(address):
                return host
            if _is_forbidden(address):
                raise CallbackRefused(f"{host} is a link-local or metadata address")
            if self.any_public and address.is_global:
                return host
        elif (
            host in self.names
            or host.endswith(self.suffixes)
            or (self.any_public and host != "localhost")
        ):
            return host
        raise CallbackRefused(f"host {host!r} is not in webhook_allowed_hosts")

    def check_addresses(self, host: str, addresses: list[Address]) -> None:
        """CallbackRefused when `host`, as resolved now, leads somewhere not allowed."""
        named = host in self.names or host.endswith(self.suffixes)
        for address in addresses:
            if self._in_networks(address):
                continue
            if _is_forbidden(address):
                raise CallbackRefused(
                    f"{host} resolves to {address}, a link-local or metadata address"
                )
            if not named and not address.is_global:
                raise CallbackRefused(f"{host} resolves to {address}, which is not public")


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to now (a literal address is itself)."""
    literal = _address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [address for info in infos if (address := _address(info[4][0])) is not None]


def read_secret(settings: Settings) -> str | None:
    """The signing secret: `webhook_secret`, else the first line of `webhook_secret_file`."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    if settings.webhook_secret_file is not None:
        text = settings.webhook_secret_file.read_text().strip()
        return text.splitlines()[0].strip() if text else None
    return None


class WebhookStore(Protocol):
    """Where delivery outcomes go (StoreClient, or a TaskStore wrapped for tests)."""

    async def call(self, method: str, *args: Any) -> Any: ...


class _Retry(Exception):
    """An attempt worth repeating (transport error, 408, 429, 5xx)."""


@dataclass
class Delivery:
    state: str = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None


class WebhookSender:
    """Delivers finished tasks to their callback URLs, in the background of this replica."""

    def __init__(
        self,
        settings: Settings,
        store: WebhookStore,
        render: Callable[[dict[str, Any]], bytes],
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.policy = HostPolicy.parse(settings.webhook_allowed_hosts)
        secret = read_secret(settings) if self.policy.enabled else None
        self.signer = Webhook(secret) if secret else None
        self.store = store
        self.render = render
        self.timeout_s = settings.webhook_timeout_s
        self.max_attempts = settings.webhook_max_attempts
        self.window_s = settings.webhook_retry_window_s
        self.backoff_s = settings.webhook_backoff_s
        self._transport = transport
        self._deliveries: set[asyncio.Task] = set()

    def check_url(self, url: str) -> str:
        if self.policy.enabled and self.signer is None:
            raise CallbackRefused("webhooks are off: the signing secret file is empty")
        return self.policy.check_url(url)

    def notify(self, task: dict[str, Any] | None) -> asyncio.Task | None:
        """Start delivering a finished task that has a callback URL (else nothing)."""
        if not task or not task.get("callback_url") or task.get("webhook_state") != "pending":
            return None
        delivery = asyncio.create_task(self.deliver(task))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        return delivery

    async def deliver(self, task: dict[str, Any]) -> Delivery:
        """POST the task until delivered or out of attempts; its final Delivery."""
        task_id = task["task_id"]
        url = task["callback_url"]
        delivery = Delivery(state="delivering")
        body = self.render(task)
        message_id = f"msg_{task_id}_{task['status']}"
        try:
            host = self.check_url(url)
            async with httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=False, transport=self._transport
            ) as client:
                retrying = AsyncRetrying(
                    stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.window_s),
                    wait=wait_exponential_jitter(initial=self.backoff_s, max=MAX_BACKOFF_S),
                    retry=retry_if_exception_type(_Retry),
                    reraise=True,
                )
                async for attempt in retrying:
                    with attempt:
                        try:
                            await self._attempt(client, url, host, message_id, body, delivery)
                        finally:
                            if delivery.state == "delivering":  # to be retried: recorded now
                                await self._record(task_id, delivery)
        except CallbackRefused as error:
            delivery.state, delivery.last_error = "failed", f"refused: {error}"
        except _Retry:
            delivery.state = "failed"  # out of attempts or time; the last one is recorded
        except Exception as error:  # never a crash of the replica's loop
            logger.exception("webhook of task %s failed", task_id)
            delivery.state, delivery.last_error = "failed", f"{type(error).__name__}: {error}"
        await self._record(task_id, delivery)
        logger.info(
            "webhook of task %s: %s after %d attempts (last status %s)",
            task_id,
            delivery.state,
            delivery.attempts,
            delivery.last_status,
        )
        return delivery

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        url: str,
        host: str,
        message_id: str,
        body: bytes,
        delivery: Delivery,
    ) -> None:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.policy.check_addresses(host, await resolve(host, port))
        delivery.attempts += 1
        now = datetime.now(tz=UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(message_id, now, body.decode()),
        }
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.TransportError as error:
            delivery.last_status, delivery.last_error = None, f"{type(error).__name__}: {error}"
            raise _Retry from error
        delivery.last_status = response.status_code
        if response.is_success:
            delivery.state, delivery.last_error = "delivered", None
            return
        delivery.last_error = f"HTTP {response.status_code}"
        if response.status_code in RETRIED_STATUSES or response.status_code >= 500:
            raise _Retry
        delivery.state = "failed"  # the receiver refused it: no retry

    async def _record(self, task_id: str, delivery: Delivery) -> None:
        """Store the delivery as it stands after an attempt (or the refusal), and count it."""
        outcome = ATTEMPT_OUTCOMES.get(delivery.state)
        if outcome is not None:
            record_webhook_delivery(outcome)
        try:
            await self.store.call(
                "record_webhook",
                task_id,
                delivery.state,
                delivery.attempts,
                delivery.last_status,
                (delivery.last_error or "")[:500] or None,
            )
        except Exception as error:  # the outcome is logged either way
            logger.warning("could not record the webhook of task %s: %r", task_id, error)

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) for the deliveries in flight (tests, shutdown)."""
        if self._deliveries:
            await asyncio.wait(set(self._deliveries), timeout=timeout_s)
