"""Who to tell that their feedback led to a fix: the pseudonymized customers of a fixed series, with a message.

Customers appear by their pseudonymized key only; the CRM that holds the key map sends the
message. The local default writes each (ticket, customer) message once to an outbox file.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from feedback_assets.alerts.evidence import customer_safe


@cache
def load_followup_messages(path: Path) -> dict:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "other" not in document.get("domains", {}):
        raise ValueError(f"{path.name} needs a message for the `other` domain")
    return document


def followup_message(domain: str, subject: str, fixed_on: date, messages: Mapping) -> str:
    """The domain's message (or the general one), filled in with a sanitised subject."""
    template = messages["domains"].get(domain) or messages["domains"]["other"]
    return " ".join(template.split()).format(subject=customer_safe(subject, "your order"), fixed_on=fixed_on.isoformat())


def customers_of_fix(items: pd.DataFrame, resolution: Mapping, domain: str, subject: str, messages: Mapping) -> list[dict]:
    """One row per customer who complained about the series before its fix (customers without a key cannot be reached)."""
    if items.empty:
        return []
    known = items[items["customer_key"].notna() & (items["customer_key"] != "")]
    message = followup_message(domain, subject, resolution["resolved_at"].date(), messages)
    rows = []
    for customer, theirs in sorted(known.groupby("customer_key"), key=lambda kv: kv[0]):
        rows.append({
            "ticket_key": resolution["ticket_key"], "series_key": resolution["series_key"], "code": resolution["code"],
            "customer_key": customer, "complaints": int(theirs["feedback_id"].nunique()),
            "first_complaint": min(theirs["feedback_date"]), "last_complaint": max(theirs["feedback_date"]),
            "channels": sorted(set(theirs["channel"])), "domain": domain, "message": message,
        })
    return rows


class FollowupOutbox:
    """Follow-up messages as JSON lines, each (ticket, customer) written once however often the asset runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def messages(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.endswith("\n") and line.strip()]

    def send(self, rows: Iterable[Mapping]) -> int:
        """Appends the rows not sent before; returns how many were new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            sent = {(m["ticket_key"], m["customer_key"]) for m in map(json.loads, filter(str.strip, handle))}
            new = [r for r in rows if (r["ticket_key"], r["customer_key"]) not in sent]
            handle.seek(0, 2)
            handle.writelines(json.dumps({"ticket_key": r["ticket_key"], "customer_key": r["customer_key"],
                                          "domain": r["domain"], "message": r["message"]}, sort_keys=True) + "\n"
                              for r in new)
        return len(new)
