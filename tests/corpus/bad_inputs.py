"""The bad-input corpus: export files that break naive parsers, each with the outcome it must have.

Every case is generated here (no binary fixtures): `write_corpus(landing_dir)` drops each file into
`landing/<mapping>/` as a user would. The expected outcome of a file is what the ledger records
(`status`, `records` landed, a substring of the `error`) and what silver makes of its records
(`silver` rows accepted, `rejects` by reason, `dropped` field values by field). Records of one case
never collide with another's (ids and texts carry the case name), so the whole corpus can land and
run through bronze and silver together, next to good files, as it would in production.

    python -m tests.corpus.bad_inputs /tmp/corpus   # writes the files to try `feedback ingest` by hand
"""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REVIEWS_HEADER = ("review_id,submitted_at,product_sku,variant,stars,headline,body,reviewer_email,customer_id,"
                  "order_ref,ship_region")
DAY = "2026-10-05"
EPOCH = 1_791_200_000  # 2026-10-05T10:13:20Z


@dataclass(frozen=True)
class Expected:
    status: str  # registered | rejected | quarantined
    records: int = 0
    silver: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Case:
    name: str  # the file name; records carry it in their ids and texts
    mapping: str
    build: Callable[[str], bytes]
    expected: Expected
    what: str

    @property
    def file_name(self) -> str:
        return self.name


# ---- record builders ------------------------------------------------------------------------


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


def review(case: str, n: int, *, when: str = f"{DAY}T10:00:00Z", body: str | None = None, stars: str = "2",
           sku: str = "JKT-1042", variant: str = "M", region: str = "us_west", review_id: str | None = None,
           headline: str = "Not great") -> str:
    text = body if body is not None else f"The jacket from {case} number {n} runs small in the shoulders."
    fields = [review_id or f"{case}-R{n}", when, sku, variant, stars, headline, text, f"c{n}@example.com",
              f"{case}-C{n}", f"ORD-{n:05d}", region]
    return ",".join(_csv_field(v) for v in fields)


def reviews(case: str, *rows: str, header: str = REVIEWS_HEADER, newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


def good_reviews(case: str, count: int) -> list[str]:
    return [review(case, n) for n in range(1, count + 1)]


def ticket(case: str, n: int, **overrides: object) -> dict:
    record = {
        "ticket_id": f"{case}-T{n}", "created_at": EPOCH + n, "subject": f"Parcel {n} for {case} is late",
        "transcript": [{"role": "customer", "text": f"My parcel for {case} ({n}) has not arrived."},
                       {"role": "agent", "text": "Sorry to hear that."}],
        "requester": {"id": f"{case}-U{n}"}, "order": {"id": f"ORD-{n:05d}", "sku": "ELC-2207"}, "region": "us_east",
    }
    record.update(overrides)
    return record


def jsonl(*records: dict | str, newline: str = "\n") -> bytes:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return (newline.join(lines) + newline).encode()


def app_review(case: str, n: int, **overrides: object) -> dict:
    record = {"id": f"{case}-A{n}", "updated": f"{DAY}T08:00:00Z", "title": "Checkout", "rating": 1,
              "content": f"The app crashes at checkout ({case} {n}).", "author_name": f"{case}-author{n}",
              "territory": "US", "platform": "android", "app_version": "5.3.0", "language": "en"}
    record.update(overrides)
    return record


def survey_csv(case: str, *rows: str) -> bytes:
    header = "response_id;completed_local;tz;nps_score;comment;customer_ref;order_number;region"
    return ("\n".join([header, *rows]) + "\n").encode()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---- the cases ------------------------------------------------------------------------------


def _cases() -> list[Case]:
    c: list[Case] = []

    def add(name: str, mapping: str, build: Callable[[str], bytes], expected: Expected, what: str) -> None:
        c.append(Case(name, mapping, build, expected, what))

    reg = "registered"
    add(f"good_reviews_{DAY}.csv", "product_reviews", lambda k: reviews(k, *good_reviews(k, 3)),
        Expected(reg, 3, 3), "a good file next to the bad ones")
    add(f"empty_{DAY}.csv", "product_reviews", lambda k: b"",
        Expected("rejected", error="the file is empty"), "zero bytes")
    add(f"whitespace_only_{DAY}.csv", "product_reviews", lambda k: b"\n \n\t\n",
        Expected("rejected", error="the file is empty"), "only blank lines")
    add(f"header_only_{DAY}.csv", "product_reviews", lambda k: reviews(k),
        Expected(reg, 0, 0), "a header and no records (a day without reviews)")
    add(f"header_only_crlf_{DAY}.csv", "product_reviews", lambda k: reviews(k, newline="\r\n"),
        Expected(reg, 0, 0), "a header with CRLF and no records")
    add(f"bom_utf8_{DAY}.csv", "product_reviews", lambda k: codecs.BOM_UTF8 + reviews(k, *good_reviews(k, 2)),
        Expected(reg, 2, 2), "UTF-8 with a byte-order mark (Excel)")
    add(f"utf16_le_bom_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, *good_reviews(k, 2)).decode().encode("utf-16"),
        Expected(reg, 2, 2), "UTF-16 little-endian with a byte-order mark")
    add(f"utf16_be_bom_{DAY}.csv", "product_reviews",
        lambda k: codecs.BOM_UTF16_BE + reviews(k, *good_reviews(k, 2)).decode().encode("utf-16-be"),
        Expected(reg, 2, 2), "UTF-16 big-endian with a byte-order mark")
    add(f"utf16_no_bom_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, *good_reviews(k, 2)).decode().encode("utf-16-le"),
        Expected("rejected", error="NUL bytes"), "UTF-16 without a byte-order mark: the header is unreadable")
    add(f"invalid_utf8_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1)) + review(k, 2, body=f"caf\xe9 au lait {k}").encode("latin-1") + b"\n",
        Expected(reg, 2, 1, {"invalid_encoding": 1}), "a Latin-1 byte in one record")
    add(f"nul_bytes_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1), review(k, 2, body=f"nul\x00inside {k}")),
        Expected(reg, 2, 1, {"malformed_record": 1}), "a NUL byte inside one record")
    add(f"crlf_{DAY}.csv", "product_reviews", lambda k: reviews(k, *good_reviews(k, 3), newline="\r\n"),
        Expected(reg, 3, 3), "Windows line endings")
    add(f"cr_only_{DAY}.csv", "product_reviews", lambda k: reviews(k, *good_reviews(k, 2), newline="\r"),
        Expected(reg, 2, 2), "classic Mac line endings (CR only)")
    add(f"quoted_newlines_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, body=f"Line one of {k},\nline two, \"quoted\"\r\nline three"), review(k, 2)),
        Expected(reg, 2, 2), "newlines, commas and quotes inside a quoted field")
    add(f"unterminated_quote_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1), review(k, 2).replace(f"The jacket from {k} number 2",
                                                                f'"The jacket from {k} number 2'), *[review(k, n) for n in (3, 4, 5)]),
        Expected(reg, 5, 4, {"malformed_record": 1}), "an opening quote that never closes swallows the rest of the file")
    add(f"unterminated_quote_closed_later_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, body="BODY").replace(",BODY,", f',"broken {k},'),
                          review(k, 2, body=f"fine, really {k}"), review(k, 3)),
        Expected(reg, 3, 2, {"malformed_record": 1}), "an unterminated quote closed by the next record's quote")
    add(f"wrong_width_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1), f"{k}-R2,{DAY}T10:00:00Z,JKT-1042", review(k, 3) + ",extra,columns"),
        Expected(reg, 3, 1, {"malformed_record": 2}), "a short row and a long row")
    add(f"duplicate_header_mapped_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1) + ",second body", header=REVIEWS_HEADER + ",body"),
        Expected("rejected", error="appear more than once"), "the mapped column `body` twice: which is the complaint?")
    add(f"duplicate_header_unmapped_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1) + ",a,b", review(k, 2) + ",c,d", header=REVIEWS_HEADER + ",notes,notes"),
        Expected(reg, 2, 2), "an unmapped column twice: both kept in raw_record")
    add(f"missing_required_column_{DAY}.csv", "product_reviews", lambda k: f"review_id,stars\n{k}-R1,5\n".encode(),
        Expected("rejected", error="missing required column"), "columns the mapping needs are absent")
    add(f"formulas_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, body=f'=HYPERLINK("http://evil.example","{k}")'),
                          review(k, 2, body=f"+cmd|' /C calc'!A0 {k}"), review(k, 3, body=f"@SUM(1+1) {k}")),
        Expected(reg, 3, 3), "spreadsheet formulas are text like any other")
    add(f"huge_line_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, body="x" * 2_200_000), review(k, 2)),
        Expected(reg, 2, 1, {"malformed_record": 1}), "a record over the 2,000,000-character limit")
    add(f"oversize_text_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, body=f"{k} " + "very long complaint " * 1500), review(k, 2)),
        Expected(reg, 2, 1, {"oversize_text": 1}), "text over FEEDBACK_MAX_TEXT_CHARS")
    add(f"future_and_ancient_dates_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1), review(k, 2, when="2099-01-01T10:00:00Z"),
                          review(k, 3, when="1999-05-05T10:00:00Z"), review(k, 4)),
        Expected(reg, 4, 2, {"bad_timestamp": 2}), "one record from the future, one from before the partitions")
    add(f"all_ancient_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, when="2015-03-01T10:00:00Z"), review(k, 2, when="2015-03-02T10:00:00Z")),
        Expected("rejected", error="--shift-to-end"), "an old export: refused whole, with the way to replay it")
    add(f"all_future_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, when="2099-03-01T10:00:00Z")),
        Expected("rejected", error="lie in the future"), "every record dated in the future")
    add(f"unparseable_dates_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, when="yesterday-ish"), review(k, 2, when=""), review(k, 3)),
        Expected(reg, 3, 1, {"bad_timestamp": 2}), "dates nobody can read")
    add(f"ratings_out_of_scale_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, stars="0"), review(k, 2, stars="11"), review(k, 3, stars="five"),
                          review(k, 4, stars="4")),
        Expected(reg, 4, 4, dropped={"rating": 3}), "ratings outside 1..5 or not numbers: kept items, dropped ratings")
    add(f"duplicate_ids_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1), review(k, 1, body=f"Second copy of {k}"), review(k, 2)),
        Expected(reg, 3, 2, {"duplicate_source_id": 1}), "the same review id twice")
    add(f"hostile_keys_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, sku="SKU-" + "9" * 200), review(k, 2, region="us_west\x07"),
                          review(k, 3, variant="M\nXL")),
        Expected(reg, 3, 3, dropped={"sku": 1, "region": 1, "variant": 1}), "keys too long or with control characters")
    add(f"huge_source_id_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, review_id=f"{k}-" + "i" * 300), review(k, 2)),
        Expected(reg, 2, 1, {"invalid_source_id": 1}), "a source id of 300 characters")
    add(f"blank_lines_between_{DAY}.csv", "product_reviews",
        lambda k: (REVIEWS_HEADER + "\n\n" + "\n\n".join(good_reviews(k, 3)) + "\n\n\n").encode(),
        Expected(reg, 3, 3), "blank lines are not records")
    add(f"markup_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, body=f"<script>alert('{k}')</script><b>Too small</b>"),
                          review(k, 2, headline="", body="<p></p>")),
        Expected(reg, 2, 1, {"empty_text": 1}), "markup only: the text left after stripping decides")
    add(f"empty_text_{DAY}.csv", "product_reviews",
        lambda k: reviews(k, review(k, 1, headline="", body=""), review(k, 2, headline=" ", body="  ")),
        Expected(reg, 2, 0, {"empty_text": 2}), "no text at all")
    add("invalid_utf8_name_\udcff_2026-10-05.csv", "product_reviews", lambda k: reviews(k, *good_reviews(k, 2)),
        Expected(reg, 2, 2), "a file name that is not valid UTF-8")
    add(f"surveys_semicolon_{DAY}.csv", "surveys",
        lambda k: survey_csv(k, f"{k}-S1;05.10.2026 09:30;Europe/Berlin;3;Late again, {k};{k}-c1;ORD-1;eu_central",
                             f"{k}-S2;05.10.2026 09:31;Mars/Olympus;9;Fine {k};{k}-c2;ORD-2;eu_central",
                             f"{k}-S3;05.10.2026 09:32;Europe/Berlin;42;Odd score {k};{k}-c3;ORD-3;eu_central"),
        Expected(reg, 3, 2, {"bad_timestamp": 1}, dropped={"rating": 1}), "an unknown time zone; an NPS of 42")

    add(f"good_tickets_{DAY}.jsonl", "support_tickets", lambda k: jsonl(*(ticket(k, n) for n in (1, 2, 3))),
        Expected(reg, 3, 3), "good JSON Lines")
    add(f"line_separators_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1, subject=f"Two\u2028lines {k}"), ticket(k, 2, subject=f"NEL\x85and\u2029PS {k}"),
                        json.dumps(ticket(k, 3, subject=f"form FF feed VT vtab CR cr {k}"))
                        .replace(" FF ", "\x0c").replace(" VT ", "\x0b").replace(" CR ", "\r")),
        Expected(reg, 3, 3), "U+2028, U+2029, NEL, and raw FF, VT and CR inside strings are text, not line breaks")
    add(f"deep_nesting_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), f'{{"ticket_id": "{k}-T2", "deep": {_deep(200_000)}}}', ticket(k, 3)),
        Expected(reg, 3, 2, {"malformed_record": 1}), "nesting deep enough to exhaust the parser's recursion")
    add(f"deep_but_fine_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl({**ticket(k, 1), "extra": json.loads(_deep(300))}),
        Expected(reg, 1, 1), "nesting the parser can read, in a field the mapping ignores")
    add(f"lone_surrogate_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), json.dumps(ticket(k, 2)).replace(f"Parcel 2 for {k}", f"Parcel \\ud800 {k}"),
                        '{"\\udfff": 1, ' + json.dumps(ticket(k, 3))[1:]),
        Expected(reg, 3, 1, {"invalid_encoding": 2}), "lone surrogate escapes in a value and in a key")
    add(f"huge_integer_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), json.dumps(ticket(k, 2)).replace(f'"created_at": {EPOCH + 2}', '"created_at": ' + "9" * 5000)),
        Expected(reg, 2, 1, {"malformed_record": 1}), "an integer too long for Python to convert")
    add(f"duplicate_keys_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), json.dumps(ticket(k, 2))[:-1] + f', "subject": "Overwritten {k}"}}'),
        Expected(reg, 2, 1, {"malformed_record": 1}), "a repeated key would overwrite the complaint silently")
    add(f"top_level_array_{DAY}.jsonl", "support_tickets",
        lambda k: json.dumps([ticket(k, n) for n in (1, 2, 3)], indent=2).encode(),
        Expected(reg, 3, 3), "one JSON array instead of JSON Lines: read element by element")
    add(f"array_and_scalar_lines_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), "[1, 2, 3]", "null", '"just a string"', "42"),
        Expected(reg, 5, 1, {"malformed_record": 4}), "lines that hold arrays, null, strings and numbers")
    add(f"truncated_last_line_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1)) + json.dumps(ticket(k, 2))[:60].encode(),
        Expected(reg, 2, 1, {"malformed_record": 1}), "the last record cut off mid-object")
    add(f"missing_required_everywhere_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl({"id": f"{k}-1", "message": "hello"}, {"id": f"{k}-2", "message": "world"}),
        Expected("rejected", error="no record has the required field"), "a file of another shape (wrong mapping?)")
    add(f"missing_fields_some_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), {k2: v for k2, v in ticket(k, 2).items() if k2 != "ticket_id"},
                        {k2: v for k2, v in ticket(k, 3).items() if k2 != "created_at"}),
        Expected(reg, 3, 1, {"missing_required_field": 1, "bad_timestamp": 1}), "one record without an id, one without a time")
    add(f"utf16_{DAY}.jsonl", "support_tickets", lambda k: jsonl(ticket(k, 1), ticket(k, 2)).decode().encode("utf-16"),
        Expected(reg, 2, 2), "JSON Lines in UTF-16 with a byte-order mark")
    add(f"nul_bytes_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1), json.dumps(ticket(k, 2)).replace(f"Parcel 2 for {k}", f"Parcel\x00 2 for {k}")),
        Expected(reg, 2, 1, {"malformed_record": 1}), "a raw NUL byte in a line")
    add(f"invalid_utf8_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1)) + json.dumps(ticket(k, 2), ensure_ascii=False).replace(
            f"Parcel 2 for {k}", f"Parcel \xe9 2 for {k}").encode("latin-1") + b"\n",
        Expected(reg, 2, 1, {"invalid_encoding": 1}), "a Latin-1 byte inside a JSON string")
    add(f"crlf_{DAY}.jsonl", "support_tickets", lambda k: jsonl(ticket(k, 1), ticket(k, 2), newline="\r\n"),
        Expected(reg, 2, 2), "JSON Lines with CRLF")
    add(f"epoch_nonsense_{DAY}.jsonl", "support_tickets",
        lambda k: jsonl(ticket(k, 1, created_at="NaN"), ticket(k, 2, created_at=1e20), ticket(k, 3, created_at=-1e20),
                        ticket(k, 4, created_at={"when": "now"}), ticket(k, 5)),
        Expected(reg, 5, 1, {"bad_timestamp": 4}), "timestamps that are NaN, far out of range, or objects")
    add(f"hostile_app_keys_{DAY}.jsonl", "app_store_reviews",
        lambda k: jsonl(app_review(k, 1, app_version="5." * 10_000), app_review(k, 2, platform="android\n<!channel>"),
                        app_review(k, 3, rating=9), app_review(k, 4)),
        Expected(reg, 4, 4, dropped={"app_version": 1, "platform": 1, "rating": 1}),
        "a 20,000-character app version, a platform with a newline, a rating of 9 on a 1..5 scale")
    return c


CASES: list[Case] = _cases()


def write_case(landing_dir: Path, case: Case) -> Path:
    folder = landing_dir / case.mapping
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(folder, case.file_name)
    path.write_bytes(case.build(case_key(case)))
    return path


def case_key(case: Case) -> str:
    """The prefix of every id and text of a case: its file name up to the date, ASCII only."""
    return case.name.split("_2026")[0].encode("ascii", "replace").decode().replace("?", "x")


def write_corpus(landing_dir: Path) -> list[Path]:
    return [write_case(landing_dir, case) for case in CASES]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs")
    for written in write_corpus(target):
        print(written)
