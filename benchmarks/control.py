"""kubesim's control endpoints (counters) from any process, and counter arithmetic."""

from __future__ import annotations

from typing import Any

import httpx

#: Verbs reported per spawn and per minute, in this order.
VERBS = ("create", "get", "list", "watch", "update", "patch", "delete")


class Control:
    """Reads and resets kubesim's request counters (control traffic is not counted)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, what: str) -> dict[str, Any]:
        with httpx.Client(timeout=30) as client:
            response = client.request(method, f"{self.url}/_kubesim/{what}", headers=self.headers)
        response.raise_for_status()
        return dict(response.json())

    def counters(self) -> dict[str, Any]:
        return self._call("GET", "counters")

    def reset(self) -> dict[str, Any]:
        """Zero the counters; returns what they held."""
        return self._call("DELETE", "counters")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")


def by_verb(snapshot: dict[str, Any]) -> dict[str, int]:
    """Requests per verb, as a spawner side made them.

    Watches count when opened (kubesim records a watch when it ends). Event creates are the
    flood generator's, never a spawner's, and are left out.
    """
    counts = dict.fromkeys(VERBS, 0)
    for row in snapshot.get("requests", []):
        if row["verb"] != "watch" and (row["verb"], row["resource"]) != ("create", "events"):
            counts[row["verb"]] = counts.get(row["verb"], 0) + row["count"]
    counts["watch"] = int(snapshot.get("watches_opened", 0))
    return counts


def by_verb_and_code(snapshot: dict[str, Any]) -> dict[str, int]:
    """``"verb resource code" → count`` (for retries and conflicts)."""
    return {
        f"{row['verb']} {row['resource']} {row['code']}": row["count"]
        for row in snapshot.get("requests", [])
    }


def per(counts: dict[str, int], divisor: float, *, digits: int = 3) -> dict[str, float]:
    """Each count divided by ``divisor`` (spawns, minutes)."""
    return {verb: round(n / divisor, digits) if divisor else 0.0 for verb, n in counts.items()}
