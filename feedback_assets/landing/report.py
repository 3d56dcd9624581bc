"""What a landing did, in the words `feedback ingest` prints: one outcome, the true counts, the next step."""

from __future__ import annotations

from feedback_assets.landing.registry import Registration, Status


def _days(registration: Registration) -> str:
    days = registration.days
    return f"{len(days)} day(s) {days[0]} .. {days[-1]}" if days else "no day"


def describe(registration: Registration, file_name: str, contract: str) -> list[str]:
    """The lines that tell a person what happened to one file; the first one says the outcome."""
    short = registration.sha256[:12]
    match registration.status:
        case Status.already_registered:
            return [f"{file_name} was landed before (same content, sha256 {short}); nothing to do. "
                    "Run again with --replace to land it anew with this mapping."]
        case Status.rejected:
            before = "refused before with this mapping and options (--replace tries again): " if registration.repeat else ""
            return [f"error: {before}{registration.error}"]
        case Status.quarantined:
            return [f"error: {file_name} is quarantined, nothing of it landed (the other files are not affected): "
                    f"{registration.error}. Fix the file or its mapping, then run again with --replace."]
    lines = []
    if registration.rows == 0:
        lines.append(f"Landed {file_name} ({contract}): it holds no records (a header only); nothing to materialize.")
    else:
        lines.append(f"Landed {file_name} ({contract}): {registration.rows:,} records on {_days(registration)}; "
                     f"{registration.rows_with_errors:,} with errors (they become reject rows in silver).")
    if registration.rows_out_of_range:
        lines.append(f"{registration.rows_out_of_range:,} of them are dated outside the partitions and become "
                     "bad_timestamp rejects (see `--shift-to-end` or FEEDBACK_PARTITIONS_START).")
    if registration.replaced_days:
        lines.append(f"It replaces an earlier landing of the same file on {len(registration.replaced_days)} day(s); "
                     "those days need materializing too.")
    if registration.unknown_columns:
        lines.append(f"Columns not used by the mapping (kept in raw_record): {', '.join(registration.unknown_columns)}")
    touched = sorted({*registration.days, *registration.replaced_days})
    if touched:
        lines.append(f"Next: feedback materialize --start {touched[0]} --end {touched[-1]}")
    return lines
