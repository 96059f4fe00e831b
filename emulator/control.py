"""A small synchronous client for the ``/_emulator`` control endpoints."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from ig_outbound.emulator.config import ScriptedAnswer
from ig_outbound.emulator.media_files import media_url, tag_of
from ig_outbound.emulator.tokens import fingerprint as token_fingerprint


class EmulatorControl:
    """Drive a running emulator: register things, inject faults, read what was sent."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=f"{self.base_url}/_emulator", timeout=timeout)
        self._media: dict[str, Any] | None = None  # the media host's place never changes

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    # --- reading ------------------------------------------------------------------------

    def health(self) -> bool:
        try:
            return self._client.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    def calls(self, since: int = 0, rejected_since: int = 0) -> dict[str, Any]:
        """``{"calls": [...], "rejected": [...], "next_since": n, "next_rejected_since": m}``."""
        params = {"since": since, "rejected_since": rejected_since}
        result: dict[str, Any] = self._request("GET", "/calls", params=params)
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/stats")
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/faults")
        return result

    def rate_limits(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/rate_limits")
        return result

    def violations(self) -> int:
        """Calls refused for exceeding Meta's per-account rate limits, in total."""
        total: int = self.stats()["violations"]
        return total

    def accounts(self) -> list[dict[str, str]]:
        result: list[dict[str, str]] = self._request("GET", "/accounts")["accounts"]
        return result

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until at least ``count`` accepted calls are recorded; return them."""
        deadline = time.monotonic() + timeout
        while True:
            calls: list[dict[str, Any]] = self.calls()["calls"]
            if len(calls) >= count or time.monotonic() > deadline:
                return calls
            time.sleep(0.02)

    # --- changing ------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge fault settings, e.g. ``set_faults(error_5xx_rate=0.1, seed=7)``."""
        result: dict[str, Any] = self._request("PUT", "/faults", json=faults)
        return result

    def set_rate_limits(self, **settings: Any) -> dict[str, Any]:
        """Merge rate-limit settings, e.g. ``set_rate_limits(enabled=True, window_s=0.3)``.

        Windows and violation counters are kept; ``reset()`` clears them and restores the
        configured settings.
        """
        result: dict[str, Any] = self._request("PUT", "/rate_limits", json=settings)
        return result

    def script(self, answers: Iterable[ScriptedAnswer | Mapping[str, Any]]) -> int:
        """Queue answers for the next calls; returns how many are pending."""
        payload = [a.model_dump() if isinstance(a, ScriptedAnswer) else dict(a) for a in answers]
        pending: int = self._request("POST", "/script", json={"answers": payload})["pending"]
        return pending

    def reset(self) -> None:
        self._request("POST", "/reset")

    def add_account(
        self,
        ig_id: str,
        token: str,
        username: str,
        users: Iterable[str] = (),
        *,
        name: str | None = None,
        token_age_s: float | None = None,
        token_lifetime_s: float | None = None,
        subscribed_fields: Iterable[str] | None = None,
    ) -> dict[str, str]:
        """Register an account (again: rotates its own token). ``token_age_s``: how old its
        token already is; ``token_lifetime_s``: its lifetime (default the emulator's)."""
        body: dict[str, Any] = {
            "ig_id": ig_id,
            "token": token,
            "username": username,
            "users": list(users),
        }
        options = {
            "name": name,
            "token_age_s": token_age_s,
            "token_lifetime_s": token_lifetime_s,
            "subscribed_fields": list(subscribed_fields) if subscribed_fields is not None else None,
        }
        body.update({key: value for key, value in options.items() if value is not None})
        result: dict[str, str] = self._request("POST", "/accounts", json=body)
        return result

    def add_users(self, ig_id: str, igsids: Iterable[str], *, in_window: bool | None = None) -> int:
        """Register users; ``in_window`` False: they have not written (no messaging window)."""
        body: dict[str, Any] = {"ig_id": ig_id, "igsids": list(igsids)}
        if in_window is not None:
            body["in_window"] = in_window
        count: int = self._request("POST", "/users", json=body)["users"]
        return count

    def add_comment(
        self,
        comment_id: str,
        ig_id: str,
        commenter_igsid: str,
        created_at: float | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "comment_id": comment_id,
            "ig_id": ig_id,
            "commenter_igsid": commenter_igsid,
        }
        if created_at is not None:
            body["created_at"] = created_at
        result: dict[str, Any] = self._request("POST", "/comments", json=body)
        return result

    # --- tokens and subscriptions (never shown: described by fingerprint) -----------------

    def tokens(self, ig_id: str) -> list[dict[str, Any]]:
        """The account's tokens, oldest first: ``[{fingerprint, issued_at, expires_at, state
        (valid|expired|revoked|superseded), refreshed_from, origin, subcode}]``; see
        ``token_fingerprint`` to find one."""
        result: list[dict[str, Any]] = self._request("GET", f"/accounts/{ig_id}/tokens")["tokens"]
        return result

    def register_token(
        self,
        ig_id: str,
        token: str,
        *,
        age_s: float | None = None,
        lifetime_s: float | None = None,
    ) -> dict[str, Any]:
        """A further valid token for the account (an operator logged in again), ``age_s`` old
        and living ``lifetime_s`` (default the emulator's 60 days). Forgotten at reset.
        Returns its description."""
        body: dict[str, Any] = {"token": token}
        if age_s is not None:
            body["age_s"] = age_s
        if lifetime_s is not None:
            body["lifetime_s"] = lifetime_s
        result: dict[str, Any] = self._request("POST", f"/accounts/{ig_id}/tokens", json=body)
        return result

    def revoke_tokens(
        self, ig_id: str, subcode: int = 460, *, tokens: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Revoke the account's tokens (all, or only ``tokens``): from now on they answer 190
        with ``subcode`` (458 app removed, 460 password changed, 467 invalid, 463, 459, 464,
        492). Returns the revoked tokens' descriptions."""
        body: dict[str, Any] = {"subcode": subcode}
        if tokens is not None:
            body["fingerprints"] = [token_fingerprint(t) for t in tokens]
        path = f"/accounts/{ig_id}/tokens/revoke"
        result: list[dict[str, Any]] = self._request("POST", path, json=body)["revoked"]
        return result

    def token_settings(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/tokens/settings")
        return result

    def set_token_settings(self, **settings: Any) -> dict[str, Any]:
        """Merge token settings, e.g. ``set_token_settings(revoke_on_refresh=True)``
        (``lifetime_s``, ``min_refresh_age_s``); reset restores the configured ones."""
        result: dict[str, Any] = self._request("PUT", "/tokens/settings", json=settings)
        return result

    def subscriptions(self) -> dict[str, list[str]]:
        """Every account's subscribed webhook fields (``[]``: not subscribed)."""
        result: dict[str, list[str]] = self._request("GET", "/subscriptions")["subscriptions"]
        return result

    def graph_calls(self) -> dict[str, dict[str, int]]:
        """Calls of ``refresh_access_token``, ``me`` (node reads) and ``subscribed_apps``, by
        result (e.g. ``refreshed``, ``too_early``, ``expired``, ``subscribed``)."""
        result: dict[str, dict[str, int]] = self.stats()["graph_calls"]
        return result

    # --- Instagram's side: clock, window, webhooks, users ---------------------------------

    def clock(self) -> dict[str, float]:
        """``{"offset_s": ..., "now": ...}``: the emulator's clock (epoch seconds)."""
        result: dict[str, float] = self._request("GET", "/clock")
        return result

    def advance_clock(self, seconds: float) -> dict[str, float]:
        """Move the emulator's clock forward: windows close, comments age, without waiting."""
        result: dict[str, float] = self._request("PUT", "/clock", json={"advance_s": seconds})
        return result

    def set_clock_offset(self, seconds: float) -> dict[str, float]:
        result: dict[str, float] = self._request("PUT", "/clock", json={"offset_s": seconds})
        return result

    def window(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/window")
        return result

    def set_window(self, **settings: Any) -> dict[str, Any]:
        """Merge window settings, e.g. ``set_window(enforced=False)``."""
        result: dict[str, Any] = self._request("PUT", "/window", json=settings)
        return result

    def webhook_settings(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/webhooks/settings")
        return result

    def set_webhooks(self, **settings: Any) -> dict[str, Any]:
        """Merge webhook settings, e.g. ``set_webhooks(url=..., app_secret=..., retries=2)``."""
        result: dict[str, Any] = self._request("PUT", "/webhooks/settings", json=settings)
        return result

    def webhooks(self, since: int = 0) -> dict[str, Any]:
        """``{"webhooks": [{index, kinds, state, body, signature, attempts}], "next_since"}``."""
        result: dict[str, Any] = self._request("GET", "/webhooks", params={"since": since})
        return result

    def wait_for_webhooks(
        self, count: int, *, settled: bool = True, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll until at least ``count`` webhooks exist (``settled``: and every one of them is
        delivered or given up); return them."""
        deadline = time.monotonic() + timeout
        while True:
            hooks: list[dict[str, Any]] = self.webhooks()["webhooks"]
            done = not settled or all(h["state"] in ("delivered", "given_up") for h in hooks)
            if (len(hooks) >= count and done) or time.monotonic() > deadline:
                return hooks
            time.sleep(0.02)

    def user_message(
        self,
        ig_id: str,
        igsid: str,
        text: str | None = "Hello",
        *,
        at: float | None = None,
        ago_s: float | None = None,
        webhook: bool = True,
        **options: Any,
    ) -> dict[str, Any]:
        """User ``igsid`` writes a DM to ``ig_id`` (now, at ``at`` or ``ago_s`` seconds ago,
        on the emulator's clock): the window opens then. ``options``: ``image``,
        ``quick_reply_payload``, ``reply_to_mid``. Returns the event (``mid``, ``webhook``)."""
        body = {"ig_id": ig_id, "igsid": igsid, "text": text, "webhook": webhook, **options}
        body.update(_when(at, ago_s))
        result: dict[str, Any] = self._request("POST", "/users/message", json=body)
        return result

    def user_comment(
        self,
        ig_id: str,
        igsid: str,
        text: str = "Nice!",
        *,
        at: float | None = None,
        ago_s: float | None = None,
        webhook: bool = True,
        **options: Any,
    ) -> dict[str, Any]:
        """User ``igsid`` comments on a post of ``ig_id``; a private reply to it works.
        ``options``: ``comment_id``, ``media_id``, ``username``. Returns the event."""
        body = {"ig_id": ig_id, "igsid": igsid, "text": text, "webhook": webhook, **options}
        body.update(_when(at, ago_s))
        result: dict[str, Any] = self._request("POST", "/users/comment", json=body)
        return result

    def app_message(
        self,
        ig_id: str,
        igsid: str,
        text: str = "Hi, a person here.",
        *,
        at: float | None = None,
        ago_s: float | None = None,
    ) -> dict[str, Any]:
        """A person at business ``ig_id`` answers ``igsid`` by hand in the Instagram app: no
        Graph call, only the echo webhook. Returns the event (``mid``, ``webhook``)."""
        body: dict[str, Any] = {"ig_id": ig_id, "igsid": igsid, "text": text}
        body.update(_when(at, ago_s))
        result: dict[str, Any] = self._request("POST", "/business/message", json=body)
        return result

    def users_act(
        self,
        count: int = 1,
        *,
        accounts: Iterable[str] | None = None,
        mix: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Simulated users do ``count`` things now: ``{"events": [...], "counts": {kind: n}}``."""
        body: dict[str, Any] = {"count": count, "seed": seed}
        if accounts is not None:
            body["accounts"] = list(accounts)
        if mix is not None:
            body["mix"] = dict(mix)
        result: dict[str, Any] = self._request("POST", "/users/act", json=body)
        return result

    def simulated_users(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/users/settings")
        return result

    def set_simulated_users(self, **settings: Any) -> dict[str, Any]:
        """Merge simulated-user settings, e.g. ``set_simulated_users(rate_per_s=20)``."""
        result: dict[str, Any] = self._request("PUT", "/users/settings", json=settings)
        return result

    # --- the media host ---------------------------------------------------------------------

    def media(self) -> dict[str, Any]:
        """``{"enabled", "base_url", "ca_file", "formats", "lies"}``: where the media host
        serves, the CA file that verifies it, what it can serve and how it can lie."""
        if self._media is None or not self._media["enabled"]:
            self._media = self._request("GET", "/media")
        assert self._media is not None
        return self._media

    def media_base_url(self) -> str:
        """``https://127.0.0.1:PORT``; ``RuntimeError`` when no media host runs."""
        base_url = self.media()["base_url"]
        if not isinstance(base_url, str):
            raise RuntimeError("the emulator serves no media (config.media.enabled is off)")
        return base_url

    def media_ca_file(self) -> Path:
        """The CA file a client trusts to verify the media host (a worker's
        ``media.ca_file``)."""
        ca_file = self.media()["ca_file"]
        if not isinstance(ca_file, str):
            raise RuntimeError("the emulator's media host names no CA file")
        return Path(ca_file)

    def media_url(self, fmt: str, size: int, *, host: str | None = None, **lies: Any) -> str:
        """A file of ``fmt`` and ``size`` bytes on the media host, e.g.
        ``media_url("png", 8 * 1024 * 1024)`` or ``media_url("png", 5000, type="text/plain")``.
        ``host``: dial it by this name (``localhost``); ``lies``: the host's query flags
        (``media()["lies"]``: type, head, status, nolength, hidesize, norange, endless, drip,
        stall, garbage, redirect, hops). Each URL gets a fresh tag (``media_requests``)."""
        return media_url(self.media_base_url(), fmt, size, host=host, **lies)

    def media_requests(self, url: str | None = None) -> list[dict[str, Any]]:
        """Requests the media host got for ``url`` (by its tag; redirects keep it), or all
        of them: ``[{method, path, query, headers}]``."""
        params = {}
        if url is not None:
            params["tag"] = tag_of(url) or ""
        result: list[dict[str, Any]] = self._request("GET", "/media/requests", params=params)[
            "requests"
        ]
        return result


def _when(at: float | None, ago_s: float | None) -> dict[str, float]:
    when: dict[str, float] = {}
    if at is not None:
        when["at"] = at
    if ago_s is not None:
        when["ago_s"] = ago_s
    return when
