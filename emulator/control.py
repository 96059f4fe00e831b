"""A small synchronous client for the ``/_emulator`` control endpoints."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from ig_outbound.emulator.config import ScriptedAnswer


class EmulatorControl:
    """Drive a running emulator: register things, inject faults, read what was sent."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=f"{self.base_url}/_emulator", timeout=timeout)

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
        self, ig_id: str, token: str, username: str, users: Iterable[str] = ()
    ) -> dict[str, str]:
        body = {"ig_id": ig_id, "token": token, "username": username, "users": list(users)}
        result: dict[str, str] = self._request("POST", "/accounts", json=body)
        return result

    def add_users(self, ig_id: str, igsids: Iterable[str]) -> int:
        body = {"ig_id": ig_id, "igsids": list(igsids)}
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
