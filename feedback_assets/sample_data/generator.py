"""A deterministic synthetic e-commerce world: catalog, orders, returns and six feedback channels.

Files are written in each source's native shape (see `landing/mappings/*.yaml`), one per channel and
day, with planted incidents on top of a steady background and small rates of data-quality hazards
(duplicates, resubmissions, malformed rows). Only the incidents are recorded, in a manifest; the
labels each item was written from are not, so the pipeline has to infer them.
"""

from __future__ import annotations

import csv
import json
import random
import re
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS
from feedback_assets.sample_data import phrases as P

CHANNEL_SHARES = {
    "product_reviews": 0.35,
    "support_tickets": 0.20,
    "surveys": 0.12,
    "app_store_reviews": 0.13,
    "return_reasons": 0.10,
    "marketplace_messages": 0.10,
}
CSV_CHANNELS = ("product_reviews", "surveys", "return_reasons")

ORDER_LINES_PER_ITEM = 6
DUPLICATE_RATE = 0.01
RESUBMISSION_RATE = 0.01
MALFORMED_RATE = 0.005
PII_RATE = 0.04
BACKGROUND_RETURN_RATE = 0.045
HISTORY_DAYS = 30
WEEKDAY_VOLUME = (1.08, 1.04, 1.0, 0.98, 0.97, 0.93, 1.0)

REGIONS = ("us_west", "us_east", "us_central", "canada", "uk", "eu")
REGION_WEIGHTS = (24, 27, 19, 10, 8, 12)
REGION_ZONES = {
    "us_west": ("America/Los_Angeles",),
    "us_east": ("America/New_York",),
    "us_central": ("America/Chicago", "America/Denver"),
    "canada": ("America/Toronto", "America/Vancouver"),
    "uk": ("Europe/London",),
    "eu": ("Europe/Berlin", "Europe/Paris", "Europe/Amsterdam", "Europe/Dublin"),
}
LANGUAGE_ZONES = {"de": "Europe/Berlin", "es": "Europe/Madrid", "pt": "Europe/Lisbon"}
REGION_LANGUAGES = {
    "eu": (("en", 65), ("de", 15), ("es", 11), ("pt", 9)),
    "us_west": (("en", 97), ("es", 3)),
    "us_east": (("en", 98), ("es", 2)),
    "us_central": (("en", 98), ("es", 2)),
}
LOCALES = {"en": "en-US", "es": "es-ES", "pt": "pt-PT", "de": "de-DE"}
TERRITORIES = {"us_west": "US", "us_east": "US", "us_central": "US", "canada": "CA", "uk": "GB"}
EU_TERRITORIES = {"de": "DE", "es": "ES", "pt": "PT", "en": ("NL", "FR", "IE", "DE")}
CURRENCIES = {"canada": ("CAD", 1.36, "CA$"), "uk": ("GBP", 0.79, "£"), "eu": ("EUR", 0.92, "€")}
CARRIERS = {
    "us": (("UPS", 35), ("FedEx", 30), ("USPS", 30), ("DHL", 5)),
    "canada": (("Canada Post", 50), ("UPS", 25), ("FedEx", 25)),
    "uk": (("Royal Mail", 55), ("DHL", 25), ("UPS", 20)),
    "eu": (("DHL", 70), ("UPS", 30)),
}
SHIP_METHODS = (("standard", 68), ("express", 24), ("next_day", 8))
PLATFORMS = (("web", 45), ("ios", 30), ("android", 25))
# Orders placed in an app know the app version.
APP_PLATFORMS = ("ios", "android")
TIERS = (("new", 30), ("regular", 60), ("vip", 10))
PALETTE = ("Black", "Navy", "Olive", "Sand", "Red", "White", "Grey", "Forest Green", "Rust", "Sky Blue")


@dataclass(frozen=True)
class Sku:
    """One catalog entry with what text about it needs (noun, sizes, colors, parts)."""

    code: str
    name: str
    noun: str
    category: str
    subcategory: str
    brand: str
    price: float
    margin_pct: float
    launch_days_ago: int
    popularity: float
    colors: tuple[str, ...]


def _sku(code: str, name: str, noun: str, subcategory: str, brand: str, price: float, margin_pct: float,
         launch_days_ago: int, popularity: float, colors: str) -> Sku:
    return Sku(code, name, noun, CATEGORIES[subcategory], subcategory, brand, price, margin_pct, launch_days_ago,
               popularity, tuple(colors.split("/")) if colors else ())


CATEGORIES = {
    "jackets": "apparel", "dresses": "apparel", "jeans": "apparel", "tops": "apparel", "shoes": "apparel",
    "headphones": "electronics", "earbuds": "electronics", "smartwatch": "electronics", "speaker": "electronics",
    "charger": "electronics", "blender": "home", "lamp": "home", "bedding": "home", "skincare": "beauty",
    "haircare": "beauty", "fragrance": "beauty",
}
# code, name, noun, subcategory, brand, list price (USD), margin %, launched days before the end, popularity, colors
CATALOG: tuple[Sku, ...] = (
    _sku("JKT-1042", "Alpine Shell Jacket", "jacket", "jackets", "Northpeak", 189, 48.0, 150, 3.0, "Black/Red/Olive"),
    _sku("JKT-1057", "Harbor Rain Parka", "parka", "jackets", "Northpeak", 229, 46.5, 400, 1.2, "Navy/Sand"),
    _sku("JKT-1063", "Ridge Down Vest", "vest", "jackets", "Northpeak", 139, 51.0, 520, 1.0, "Black/Rust"),
    _sku("JKT-1071", "Metro Bomber Jacket", "bomber", "jackets", "Juniper & Co", 159, 44.0, 300, 1.1, "Olive/Black"),
    _sku("DRS-2014", "Linen Wrap Dress", "dress", "dresses", "Juniper & Co", 98, 55.0, 210, 1.4, "White/Sky Blue/Rust"),
    _sku("DRS-2031", "Sunday Midi Dress", "dress", "dresses", "Juniper & Co", 84, 57.0, 380, 1.2, "Navy/Red"),
    _sku("DRS-2046", "Evening Satin Slip Dress", "slip dress", "dresses",
         "Juniper & Co", 129, 52.0, 90, 0.8, "Black/Forest Green"),
    _sku("JNS-3102", "Straight Leg Jeans", "jeans", "jeans", "Denimworks", 79, 58.0, 700, 1.8, "Navy/Black"),
    _sku("JNS-3118", "High-Rise Skinny Jeans", "jeans", "jeans", "Denimworks", 84, 58.0, 500, 1.5, "Navy/Grey"),
    _sku("JNS-3125", "Relaxed Carpenter Jeans", "jeans", "jeans", "Denimworks", 89, 55.0, 120, 0.9, "Sand/Navy"),
    _sku("TOP-4010", "Everyday Cotton Tee", "tee", "tops",
         "Juniper & Co", 24, 62.0, 900, 2.5, "White/Black/Grey/Sky Blue"),
    _sku("TOP-4022", "Merino Crew Sweater", "sweater", "tops", "Northpeak", 119, 50.0, 260, 1.2, "Grey/Navy/Rust"),
    _sku("TOP-4037", "Oxford Button-Down Shirt", "shirt", "tops", "Juniper & Co", 64, 56.0, 610, 1.3, "White/Sky Blue"),
    _sku("TOP-4041", "Ribbed Tank", "tank", "tops", "Juniper & Co", 29, 63.0, 330, 1.0, "Black/White/Sand"),
    _sku("TOP-4055", "Fleece Half-Zip", "half-zip", "tops", "Northpeak", 89, 49.0, 180, 1.1, "Forest Green/Grey"),
    _sku("SHO-5203", "Cloudstep Running Shoe", "shoes", "shoes", "Stride", 129, 45.0, 240, 1.6, "Black/White/Sky Blue"),
    _sku("SHO-5219", "Trail Hiker Boot", "boots", "shoes", "Stride", 169, 43.0, 420, 1.0, "Rust/Black"),
    _sku("SHO-5226", "Canvas Low Sneaker", "sneakers", "shoes", "Stride", 59, 54.0, 800, 1.3, "White/Navy"),
    _sku("ELC-2101", "Studio Over-Ear Headphones", "headphones", "headphones",
         "Pulse Audio", 249, 34.0, 450, 1.2, "Black/Silver"),
    _sku("ELC-2115", "Commuter ANC Headphones", "headphones", "headphones",
         "Pulse Audio", 179, 36.0, 200, 1.3, "Black/Sand"),
    _sku("ELC-2207", "Pulse Buds Wireless Earbuds", "earbuds", "earbuds",
         "Pulse Audio", 129, 38.0, 100, 2.6, "Black/White"),
    _sku("ELC-2219", "Pulse Buds Lite", "earbuds", "earbuds", "Pulse Audio", 69, 40.0, 560, 1.4, "White/Sky Blue"),
    _sku("ELC-2304", "Pulse Fit Smartwatch", "smartwatch", "smartwatch",
         "Pulse Audio", 199, 33.0, 330, 1.3, "Black/Silver"),
    _sku("ELC-2312", "Pulse Fit Sport Watch", "watch", "smartwatch", "Pulse Audio", 149, 35.0, 640, 0.9, "Black/Red"),
    _sku("ELC-2410", "Pocket Bluetooth Speaker", "speaker", "speaker",
         "Pulse Audio", 59, 41.0, 720, 1.2, "Black/Red/Sky Blue"),
    _sku("ELC-2423", "Home Smart Speaker", "smart speaker", "speaker", "Pulse Audio", 99, 37.0, 280, 0.9, "Grey/Black"),
    _sku("ELC-2501", "65W USB-C Charger", "charger", "charger", "Voltra", 45, 52.0, 510, 1.5, "White"),
    _sku("ELC-2514", "3-in-1 Wireless Charging Pad", "charging pad", "charger",
         "Voltra", 79, 47.0, 190, 1.0, "Black/White"),
    _sku("HOM-6102", "Vortex Pro Blender", "blender", "blender", "Kitchenly", 149, 39.0, 370, 1.1, "Black/Silver"),
    _sku("HOM-6115", "Personal Smoothie Blender", "blender", "blender",
         "Kitchenly", 49, 44.0, 620, 1.0, "White/Sky Blue"),
    _sku("HOM-6208", "Arc Floor Lamp", "lamp", "lamp", "Lumen Home", 139, 46.0, 430, 0.8, "Brass/Black"),
    _sku("HOM-6214", "Dimmable Desk Lamp", "desk lamp", "lamp", "Lumen Home", 59, 49.0, 260, 1.0, "White/Black"),
    _sku("HOM-6301", "Percale Sheet Set", "sheet set", "bedding", "Dreamweave", 119, 57.0, 540, 1.2, "White/Grey/Sand"),
    _sku("HOM-6317", "Washed Linen Duvet Cover", "duvet cover", "bedding",
         "Dreamweave", 169, 55.0, 310, 0.9, "Sand/Olive/White"),
    _sku("HOM-6322", "Cooling Pillow Pair", "pillows", "bedding", "Dreamweave", 89, 53.0, 150, 0.8, "White"),
    _sku("BTY-7105", "Hydra Glow Serum", "serum", "skincare", "Glow Lab", 38, 68.0, 280, 1.3, ""),
    _sku("BTY-7112", "Daily SPF Moisturizer", "moisturizer", "skincare", "Glow Lab", 32, 66.0, 460, 1.2, ""),
    _sku("BTY-7208", "Repair Hair Mask", "hair mask", "haircare", "Glow Lab", 26, 70.0, 350, 0.9, ""),
    _sku("BTY-7214", "Scalp Renewal Shampoo", "shampoo", "haircare", "Glow Lab", 22, 71.0, 230, 1.0, ""),
    _sku("BTY-7301", "Cedar & Fig Eau de Parfum", "perfume", "fragrance", "Glow Lab", 74, 72.0, 170, 0.7, ""),
)
SKU_INDEX = {sku.code: n for n, sku in enumerate(CATALOG)}

# Sizes run from one beyond the smallest to one beyond the largest sold, so "a size smaller" exists.
SIZES = {
    "jackets": ("XXS", "XS", "S", "M", "L", "XL", "XXL"),
    "tops": ("XXS", "XS", "S", "M", "L", "XL", "XXL"),
    "dresses": ("0", "2", "4", "6", "8", "10", "12", "14", "16"),
    "jeans": ("24", "26", "28", "30", "32", "34", "36", "38"),
    "shoes": ("5", "6", "7", "8", "9", "10", "11", "12", "13"),
    "bedding": ("Twin", "Full", "Queen", "King"),
}
PLURAL_NOUNS = frozenset({"jeans", "shoes", "boots", "sneakers", "headphones", "earbuds", "pillows"})
SIZE_WORDS = {"XS": "extra small", "S": "small", "M": "medium", "L": "large", "XL": "extra large"}
PARTS = {
    "jackets": ("zipper", "main zip", "collar snap", "hood drawcord", "cuff tab"),
    "dresses": ("side zip", "strap", "hem", "back button"),
    "jeans": ("button", "zipper", "belt loop", "inner seam"),
    "tops": ("collar", "buttons", "hem", "cuff"),
    "shoes": ("sole", "heel", "toe stitching", "insole"),
    "headphones": ("headband", "left ear cup", "hinge", "cable jack"),
    "smartwatch": ("strap clasp", "screen", "heart rate sensor", "charging puck"),
    "speaker": ("power button", "charging port", "volume knob"),
    "charger": ("cable", "USB-C port", "plug"),
    "earbuds": ("charging case", "right earbud", "case lid", "ear tip"),
    "blender": ("motor", "lid", "blade assembly", "jar"),
    "lamp": ("switch", "dimmer", "bulb socket", "base"),
    "bedding": ("stitching", "duvet buttons", "elastic corner"),
    "skincare": ("pump", "cap", "dropper"),
    "haircare": ("cap", "lid"),
    "fragrance": ("atomizer", "cap"),
}
ACCESSORIES = {
    "headphones": ("carrying case", "audio cable", "charging cable"),
    "smartwatch": ("charging puck", "spare strap", "charging cable"),
    "speaker": ("charging cable", "power adapter"),
    "charger": ("cable", "wall plug"),
    "earbuds": ("charging cable", "ear tips", "manual"),
    "blender": ("lid", "tamper", "second jar", "recipe booklet"),
    "lamp": ("bulb", "screws", "mounting bracket", "shade"),
    "bedding": ("second pillowcase", "pillow shams", "storage bag"),
}

# Background mix of labels per channel (relative weights); praise is about a third overall.
CHANNEL_LABEL_WEIGHTS: dict[str, dict[str, float]] = {
    "product_reviews": {
        "praise_no_issue": 55, "defect_or_damage": 5, "poor_materials_or_durability": 6, "missing_parts": 1,
        "size_runs_small": 5, "size_runs_large": 3, "fit_cut_issue": 4, "color_or_appearance_mismatch": 3,
        "not_as_described": 3, "feature_confusion": 2, "delivery_delay": 2.5, "damaged_in_transit": 1.5,
        "wrong_or_missing_item": 1, "tracking_communication": 0.5, "checkout_payment_issue": 0.3,
        "app_or_site_bug": 0.2, "search_navigation_ux": 0.2, "account_login_issue": 0.1, "support_unhelpful": 1,
        "refund_or_return_problem": 1, "price_value_concern": 4, "trust_concern": 1, "feature_request": 3,
        "other_unclear": 2,
    },
    "support_tickets": {
        "praise_no_issue": 5, "defect_or_damage": 7, "poor_materials_or_durability": 1, "missing_parts": 4,
        "size_runs_small": 3, "size_runs_large": 2, "fit_cut_issue": 1, "color_or_appearance_mismatch": 1,
        "not_as_described": 3, "feature_confusion": 4, "delivery_delay": 14, "damaged_in_transit": 6,
        "wrong_or_missing_item": 7, "tracking_communication": 9, "checkout_payment_issue": 5, "app_or_site_bug": 3,
        "search_navigation_ux": 1, "account_login_issue": 6, "support_unhelpful": 4, "refund_or_return_problem": 10,
        "price_value_concern": 2, "trust_concern": 2, "feature_request": 1, "other_unclear": 4,
    },
    "surveys": {
        "praise_no_issue": 55, "delivery_delay": 7, "tracking_communication": 3, "damaged_in_transit": 2,
        "wrong_or_missing_item": 1, "support_unhelpful": 4, "refund_or_return_problem": 3, "price_value_concern": 6,
        "search_navigation_ux": 3, "app_or_site_bug": 2, "checkout_payment_issue": 2, "account_login_issue": 1,
        "feature_request": 4, "trust_concern": 1, "defect_or_damage": 2, "poor_materials_or_durability": 2,
        "size_runs_small": 2, "size_runs_large": 1, "fit_cut_issue": 1, "color_or_appearance_mismatch": 1,
        "not_as_described": 1, "other_unclear": 3,
    },
    "app_store_reviews": {
        "praise_no_issue": 35, "app_or_site_bug": 16, "checkout_payment_issue": 6, "search_navigation_ux": 9,
        "account_login_issue": 8, "feature_request": 10, "delivery_delay": 3, "tracking_communication": 4,
        "price_value_concern": 2, "trust_concern": 2, "support_unhelpful": 2, "refund_or_return_problem": 1,
        "other_unclear": 2,
    },
    "return_reasons": {
        "size_runs_small": 18, "size_runs_large": 14, "fit_cut_issue": 10, "defect_or_damage": 8,
        "poor_materials_or_durability": 6, "color_or_appearance_mismatch": 6, "not_as_described": 9,
        "damaged_in_transit": 5, "wrong_or_missing_item": 5, "missing_parts": 2, "feature_confusion": 1,
        "price_value_concern": 4, "delivery_delay": 2, "other_unclear": 10,
    },
    "marketplace_messages": {
        "delivery_delay": 16, "tracking_communication": 12, "wrong_or_missing_item": 10, "damaged_in_transit": 8,
        "defect_or_damage": 7, "missing_parts": 5, "refund_or_return_problem": 9, "not_as_described": 5,
        "feature_confusion": 5, "trust_concern": 4, "support_unhelpful": 2, "price_value_concern": 2,
        "praise_no_issue": 8, "other_unclear": 7,
    },
}
WEEKDAY_LABEL_BOOST = {
    0: ("delivery_delay", "tracking_communication"),
    1: ("delivery_delay",),
    5: ("app_or_site_bug", "search_navigation_ux", "praise_no_issue"),
    6: ("app_or_site_bug", "praise_no_issue"),
}
# Days between the order and the feedback, per channel.
ORDER_AGE = {
    "product_reviews": (2, 20),
    "support_tickets": (1, 12),
    "surveys": (1, 10),
    "return_reasons": (3, 28),
    "marketplace_messages": (1, 14),
}
RETURN_CATEGORY_WEIGHTS = (("apparel", 65), ("electronics", 20), ("home", 11), ("beauty", 4))
RETURN_REASONS_BY_CATEGORY = {
    "apparel": (("too_small", 25), ("too_large", 20), ("changed_mind", 20), ("not_as_described", 10),
                ("defective", 7), ("damaged", 5), ("wrong_item", 5), ("late", 8)),
    "electronics": (("defective", 35), ("changed_mind", 25), ("not_as_described", 15), ("damaged", 10),
                    ("wrong_item", 7), ("late", 8)),
    "home": (("damaged", 25), ("defective", 25), ("changed_mind", 25), ("not_as_described", 15),
             ("wrong_item", 5), ("late", 5)),
    "beauty": (("changed_mind", 50), ("damaged", 20), ("not_as_described", 20), ("wrong_item", 10)),
}
LABEL_REASON_CODES = {
    "size_runs_small": "too_small", "fit_cut_issue": "too_small", "size_runs_large": "too_large",
    "defect_or_damage": "defective", "poor_materials_or_durability": "defective", "missing_parts": "defective",
    "color_or_appearance_mismatch": "not_as_described", "not_as_described": "not_as_described",
    "feature_confusion": "not_as_described", "damaged_in_transit": "damaged", "wrong_or_missing_item": "wrong_item",
    "delivery_delay": "late",
}
ORDERLESS_LABELS = frozenset({
    "account_login_issue", "checkout_payment_issue", "app_or_site_bug", "search_navigation_ux", "feature_request",
})
PRODUCT_LABELS = frozenset({
    "defect_or_damage", "poor_materials_or_durability", "missing_parts", "size_runs_small", "size_runs_large",
    "fit_cut_issue", "color_or_appearance_mismatch", "not_as_described",
})
CSV_HEADERS = {
    "product_reviews": ("review_id", "submitted_at", "product_sku", "variant", "stars", "headline", "body",
                        "customer_id", "order_ref", "ship_region", "verified_purchase", "helpful_votes"),
    "surveys": ("response_id", "survey", "completed_local", "tz", "nps_score", "comment", "customer_ref",
                "order_number", "region"),
    "return_reasons": ("return_id", "requested_at", "order_id", "sku", "customer_id", "region", "customer_comment",
                       "return_method"),
    "orders": ("order_id", "line_no", "ordered_at", "customer_id", "sku", "qty", "unit_price", "currency", "region",
               "carrier", "ship_method", "platform", "customer_tier", "app_version"),
    "returns": ("rma_id", "order_id", "sku", "reason_code", "refund_amount", "customer_id", "created_at"),
    "sku_catalog": ("sku", "name", "category", "subcategory", "brand", "list_price", "margin_pct", "launch_date"),
}
ID_FIELDS = {
    "product_reviews": "review_id", "surveys": "response_id", "return_reasons": "return_id",
    "support_tickets": "ticket_id", "app_store_reviews": "id", "marketplace_messages": "message_id",
}
TIME_FIELDS = {
    "product_reviews": "submitted_at", "surveys": "completed_local", "return_reasons": "requested_at",
    "support_tickets": "created_at", "app_store_reviews": "updated", "marketplace_messages": "sent",
}
TEXT_FIELDS = {
    "product_reviews": ("headline", "body"), "surveys": ("comment",), "return_reasons": ("customer_comment",),
    "app_store_reviews": ("title", "content"), "marketplace_messages": ("subject", "body"),
}
ID_PREFIXES = {
    "orders": "ORD-", "returns": "RMA-", "product_reviews": "RV-", "support_tickets": "TCK-", "surveys": "SRV-",
    "app_store_reviews": "", "marketplace_messages": "MSG-", "return_reasons": "RMA-",
}
BAD_TIMESTAMPS = ("31.02.2026 25:61", "not a date", "2026-02-30T25:61:00", "yesterday")


@dataclass(frozen=True)
class SampleSummary:
    """What generate_sample wrote."""

    files: list[Path]
    feedback_items: int
    orders: int
    manifest_path: Path


class OrderLine(NamedTuple):
    order_id: str
    customer: str
    sku: int
    region: str
    carrier: str
    platform: str
    unit_price: float
    qty: int
    day: date


@dataclass
class OrderDay:
    """One day's order lines with indexes by SKU, SKU+region and carrier+region."""

    lines: list[OrderLine] = field(default_factory=list)
    index: dict[tuple[str, ...], list[int]] = field(default_factory=dict)

    def add(self, line: OrderLine) -> None:
        """Appends a line and indexes it."""
        position, index = len(self.lines), self.index
        self.lines.append(line)
        code = CATALOG[line.sku].code
        for key in (("sku", code), ("sku_region", code, line.region), ("carrier_region", line.carrier, line.region)):
            if (bucket := index.get(key)) is None:
                index[key] = [position]
            else:
                bucket.append(position)


@dataclass(frozen=True, slots=True)
class Context:
    """What a feedback text can talk about: the product, variant, order, carrier, app."""

    sku: Sku
    size: int | None
    color: str | None
    carrier: str
    region: str
    day: date
    order_id: str | None = None
    order_day: date | None = None
    platform: str = "web"
    version: str = "5.2.1"
    language: str = "en"

    @property
    def flags(self) -> tuple[bool, bool, bool]:
        """Whether templates can mention a size, a color and an order number."""
        return self.size is not None, self.color is not None, self.order_id is not None


@dataclass(frozen=True, slots=True)
class Draft:
    """Composed text: a title, the sentences of the body and how it reads."""

    title: str
    greeting: str | None
    sentences: list[str]
    signoff: str | None
    sentiment: str
    style: str = "plain"


@dataclass(frozen=True, slots=True)
class Item:
    """One feedback record before it is written in its channel's shape."""

    channel: str
    source_id: str
    at: datetime
    customer: str
    ctx: Context
    zone: str
    draft: Draft
    rating: int | None
    extra: dict[str, object]
    labels: tuple[str, ...]
    order: OrderLine | None


@dataclass(frozen=True)
class TicketPlan:
    """What the team does with the incident's ticket: its resolution code, on which day, and why."""

    code: str
    day: date
    note: str


@dataclass(frozen=True)
class Incident:
    """A planted problem: its label, the keys it concentrates on, its window, volume and what the team does about it.

    `chronic_per_day` complaints arrive from the first day (the root cause predates the spike) until
    `fix` ships; a fix also ends the spike. An incident without a fix either ends by itself (`end`)
    or goes on (deferred).
    """

    id: str
    kind: str
    label: str
    keys: dict[str, str]
    onset: date
    end: date | None
    channels: tuple[str, ...]
    shares: tuple[float, ...]
    extra_per_day: int
    ramp_days: int
    labels: tuple[tuple[str, float], ...]
    description: str
    return_reason: str | None = None
    chronic_per_day: float = 0.0
    # The chronic complaints concentrate on these keys (a subset of `keys`: 5.3.0 did not exist before the spike).
    chronic_keys: tuple[str, ...] = ()
    fix: date | None = None
    ticket: TicketPlan | None = None

    def order_key(self) -> tuple[str, ...] | None:
        """The order index key of the orders this incident's customers placed."""
        keys = self.keys
        if "sku" in keys:
            return ("sku_region", keys["sku"], keys["region"]) if "region" in keys else ("sku", keys["sku"])
        if "carrier" in keys:
            return ("carrier_region", keys["carrier"], keys["region"])
        return None

    @property
    def last_spike_day(self) -> date | None:
        """The last day at full volume: the fix day, or the day the problem ended by itself."""
        return self.fix or self.end

    def intensity(self, day: date) -> float:
        """Share of the peak volume on this day (0 outside the window; it falls over about two days after its end)."""
        last = self.last_spike_day
        if day < self.onset or (last is not None and day > last + timedelta(days=2)):
            return 0.0
        rise = min(1.0, ((day - self.onset).days + 1) / self.ramp_days)
        if last is None:
            return rise
        return max(0.0, min(rise, ((last - day).days + 1.5) / 2))

    def chronic(self, day: date) -> float:
        """Complaints per day from the root cause itself, until the fix removes it (over about two days)."""
        if self.fix is None or day <= self.fix:
            return self.chronic_per_day
        return self.chronic_per_day * max(0.0, 1 - (day - self.fix).days / 2)

    def manifest(self) -> dict[str, object]:
        """The incident as recorded in the manifest."""
        return {
            "id": self.id, "kind": self.kind, "label": self.label, "keys": dict(self.keys),
            "onset": self.onset.isoformat(), "end": self.last_spike_day.isoformat() if self.last_spike_day else None,
            "fix_date": self.fix.isoformat() if self.fix else None,
            "outcome": "fixed" if self.fix else "ended_by_itself" if self.end else "continues",
            "ticket": {"code": self.ticket.code, "day": self.ticket.day.isoformat(), "note": self.ticket.note}
            if self.ticket else None,
            "chronic_per_day": self.chronic_per_day, "chronic_keys": list(self.chronic_keys),
            "channels": list(self.channels), "extra_per_day": self.extra_per_day,
            "secondary_labels": [label for label, _ in self.labels if label != self.label],
            "description": self.description,
        }


def plan_incidents(start: date, days: int, items_per_day: int) -> list[Incident]:
    """The four planted incidents, their onsets clamped into shorter windows.

    Two are fixed (the checkout bug, the jacket's size guide), one ends by itself (the carrier's
    backlog clears; its ticket is closed as mitigated all the same) and one is deferred (the earbuds
    wait for a new supplier): the impact measurement must credit only the first two. The fixed
    ones and the deferred one have a root cause that predates the spike (a chronic rate); the
    carrier's spike stands on the carrier's ordinary background.
    """
    last = start + timedelta(days=days - 1)

    def at(offset: int) -> date:
        return start + timedelta(days=offset)

    def peak(base: float) -> int:
        return max(3, round(base * items_per_day / 200))

    def scaled(base: float) -> float:
        return base * items_per_day / 200

    def within(day: date) -> date:
        return min(day, last)

    carrier_onset = at(min(36, days * 2 // 5))
    checkout_onset = at(min(40, days * 4 // 9))
    jacket_onset = at(min(45, days // 2))
    earbuds_onset = at(min(50, days * 5 // 9))
    checkout_fix, jacket_fix = within(checkout_onset + timedelta(days=6)), within(jacket_onset + timedelta(days=7))
    carrier_end = within(carrier_onset + timedelta(days=6))
    return [
        Incident("jacket_runs_small", "sku_fit", "size_runs_small", {"sku": "JKT-1042", "region": "us_west"},
                 jacket_onset, None, ("product_reviews", "return_reasons", "support_tickets"),
                 (0.5, 0.3, 0.2), peak(10), 2, (("size_runs_small", 0.7), ("fit_cut_issue", 0.3)),
                 "Alpine Shell Jacket (JKT-1042) runs small and tight in the shoulders for us_west customers",
                 "too_small", chronic_per_day=scaled(1.6), chronic_keys=("sku", "region"), fix=jacket_fix,
                 ticket=TicketPlan("resolved", jacket_fix, "size guide updated with shoulder measurements")),
        Incident("carrier_delay", "carrier_delay", "delivery_delay", {"carrier": "FedEx", "region": "us_east"},
                 carrier_onset, carrier_end,
                 ("support_tickets", "marketplace_messages", "product_reviews", "surveys"),
                 (0.4, 0.2, 0.2, 0.2), peak(12), 2, (("delivery_delay", 1.0),),
                 "FedEx deliveries to us_east are stuck for a week",
                 ticket=TicketPlan("mitigated", within(carrier_end + timedelta(days=2)),
                                   "FedEx cleared its backlog; nothing changed on our side")),
        Incident("checkout_bug_android", "app_regression", "checkout_payment_issue",
                 {"platform": "android", "app_version": "5.3.0"}, checkout_onset, None,
                 ("app_store_reviews", "support_tickets"),
                 (0.8, 0.2), peak(16), 2, (("checkout_payment_issue", 1.0),),
                 "Android app 5.3.0 fails at the payment step until 5.3.1", chronic_per_day=scaled(3.0),
                 chronic_keys=("platform",), fix=checkout_fix,
                 ticket=TicketPlan("resolved", checkout_fix, "5.3.1 released: payment retry no longer double-charges")),
        Incident("earbuds_defect", "sku_defect", "defect_or_damage", {"sku": "ELC-2207"},
                 earbuds_onset, None, ("product_reviews", "return_reasons", "marketplace_messages"),
                 (0.45, 0.35, 0.2), peak(10), 2, (("defect_or_damage", 1.0),),
                 "Left earbud of Pulse Buds (ELC-2207) stops charging", "defective",
                 chronic_per_day=scaled(0.6), chronic_keys=("sku",),
                 ticket=TicketPlan("deferred", within(earbuds_onset + timedelta(days=5)),
                                   "waiting for the new supplier next quarter")),
    ]


_ALNUM = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LETTERS = "ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(a + b for a in _ALNUM for b in _ALNUM)


class Codes:
    """Unique random-looking codes (a letter, then letters and digits) from a counter."""

    def __init__(self, rng: random.Random, width: int) -> None:
        if width % 2:
            raise ValueError("codes have an even width: a letter, an odd number of characters, then pairs")
        self.pairs = (width - 2) // 2
        self.space = len(_LETTERS) * 32 ** (width - 1)
        self.step = 3**19 % self.space  # odd and not a multiple of 11, so a bijection of the space
        self.offset = rng.randrange(self.space)
        self.count = 0

    def next(self) -> str:
        """The next code."""
        n = (self.count * self.step + self.offset) % self.space
        self.count += 1
        tail = ""
        for _ in range(self.pairs):
            n, r = divmod(n, 1024)
            tail = _PAIRS[r] + tail
        n, r = divmod(n, 32)
        return _LETTERS[n] + _ALNUM[r] + tail


_ALTERNATIVE = re.compile(r"\[([^\[\]]*\|[^\[\]]*)\]")
_NEEDS = {"size": ("{size", "{smaller", "{larger", "{other_size"), "color": ("{color", "{other_color"),
          "order": ("{order",)}


@cache
def _parts(template: str) -> tuple[str | tuple[str, ...], ...]:
    """A template split into literal text and groups of alternatives."""
    parts: list[str | tuple[str, ...]] = []
    position = 0
    for match in _ALTERNATIVE.finditer(template):
        parts.append(template[position:match.start()])
        parts.append(tuple(match[1].split("|")))
        position = match.end()
    parts.append(template[position:])
    return tuple(p for p in parts if p != "")


@cache
def _usable(templates: tuple[str, ...], flags: tuple[bool, bool, bool]) -> tuple[str, ...]:
    """The templates a context can fill: flags say whether it has a size, a color and an order."""
    available = dict(zip(("size", "color", "order"), flags, strict=True))
    return tuple(t for t in templates
                 if all(available[need] or not any(slot in t for slot in slots) for need, slots in _NEEDS.items()))


def _pool(bank: str, key: str, flags: tuple[bool, bool, bool]) -> tuple[str, ...]:
    """Clauses under a key (a label, `label/tag` or `label@incident`) in a language's bank."""
    source = P.LABEL_CLAUSES if bank == "en" else P.FOREIGN[bank]
    return _usable(source.get(key, ()), flags)


class Table(NamedTuple):
    """Values with cumulative weights, for weighted draws."""

    values: tuple
    cum: tuple[float, ...]


def _weighted(pairs: Iterable[tuple[object, float]]) -> Table:
    pairs = list(pairs)
    return Table(tuple(v for v, _ in pairs), tuple(accumulate(w for _, w in pairs)))


def _draw(rng: random.Random, table: Table):
    """One weighted draw (a bisection, much cheaper than rng.choices for single values)."""
    return table.values[bisect_right(table.cum, rng.random() * table.cum[-1])]


_CARRIER_TABLES = {market: _weighted(pairs) for market, pairs in CARRIERS.items()}
_SHIP_TABLE = _weighted(SHIP_METHODS)
_TIER_TABLE = _weighted(TIERS)
_PLATFORM_TABLE = _weighted(PLATFORMS)
_LANGUAGE_TABLES = {region: _weighted(pairs) for region, pairs in REGION_LANGUAGES.items()}
_RETURN_CATEGORY_TABLE = _weighted(RETURN_CATEGORY_WEIGHTS)
_REASON_TABLES = {category: _weighted(pairs) for category, pairs in RETURN_REASONS_BY_CATEGORY.items()}
_REGION_TABLE = _weighted(zip(REGIONS, REGION_WEIGHTS, strict=True))
_SKU_TABLE = _weighted((n, sku.popularity) for n, sku in enumerate(CATALOG))
_LINES_TABLE = _weighted(((1, 70), (2, 22), (3, 8)))
_CLAUSE_COUNT_TABLE = _weighted(((1, 55), (2, 35), (3, 10)))
_PII_TABLE = _weighted((("email", 35), ("phone", 30), ("card", 15), ("address", 20)))


def _carriers(region: str) -> Table:
    return _CARRIER_TABLES[region if region in CARRIERS else "us"]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _luhn_card(rng: random.Random) -> str:
    """A Luhn-valid 16-digit card number in groups of four."""
    digits = [rng.choice((4, 5))] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = digit * 2 if position % 2 == 0 else digit
        total += value - 9 if value > 9 else value
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    separator = rng.choice((" ", " ", "-", ""))
    return separator.join(text[i:i + 4] for i in range(0, 16, 4))


class Slots(dict):
    """Slot values for one text, made on first use and then kept, so an item stays consistent."""

    def __init__(self, rng: random.Random, ctx: Context) -> None:
        super().__init__()
        self.rng = rng
        self.ctx = ctx

    def __missing__(self, key: str) -> str:
        value = _SLOT_MAKERS[key](self.rng, self.ctx)
        self[key] = value
        return value


def _size_text(rng: random.Random, subcategory: str, index: int) -> str:
    size = SIZES[subcategory][index]
    if size in SIZE_WORDS and rng.random() < 0.35:
        return SIZE_WORDS[size]
    if size.isdigit() and rng.random() < 0.75:
        return f"size {size}"
    return size


def _with_article(noun: str) -> str:
    if noun in PLURAL_NOUNS:
        return f"a pair of {noun}"
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _sized(offset: int) -> Callable[[random.Random, Context], str]:
    def make(rng: random.Random, ctx: Context) -> str:
        sizes = SIZES[ctx.sku.subcategory]
        index = min(max((ctx.size or 1) + offset, 0), len(sizes) - 1)
        return _size_text(rng, ctx.sku.subcategory, index)

    return make


def _other_size(rng: random.Random, ctx: Context) -> str:
    sizes = SIZES[ctx.sku.subcategory]
    choices = [i for i in range(1, len(sizes) - 1) if i != ctx.size]
    return _size_text(rng, ctx.sku.subcategory, rng.choice(choices))


def _date_text(rng: random.Random, ctx: Context) -> str:
    day = ctx.order_day or ctx.day - timedelta(days=rng.randint(3, 12))
    style = rng.randrange(5)
    if style == 0:
        return day.isoformat()
    if style == 1:
        return f"{day:%b} {day.day}"
    if style == 2:
        return f"{day.day} {day:%B}"
    if style == 3:
        return f"{day:%m/%d}"
    return P.WEEKDAYS[day.weekday()]


def _price_text(rng: random.Random, ctx: Context) -> str:
    _, rate, symbol = CURRENCIES.get(ctx.region, ("USD", 1.0, "$"))
    amount = ctx.sku.price * rate
    return f"{symbol}{amount:.2f}" if rng.random() < 0.4 else f"{symbol}{round(amount)}"


def _count_text(low: int, high: int) -> Callable[[random.Random, Context], str]:
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

    def make(rng: random.Random, ctx: Context) -> str:
        n = rng.randint(low, high)
        return words[n] if n < len(words) and rng.random() < 0.2 else str(n)

    return make


def _email(rng: random.Random) -> str:
    first, last = rng.choice(P.FIRST_NAMES), rng.choice(P.LAST_NAMES)
    local = rng.choice((f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}.{last}", f"{first}_{last}"))
    return f"{local}@{rng.choice(P.EMAIL_DOMAINS)}"


def _phone(rng: random.Random, language: str) -> str:
    return rng.choice(P.PHONE_FORMATS[language]).format(nn=f"{rng.randint(0, 99):02d}")


def _address(rng: random.Random, language: str) -> str:
    if language in P.FOREIGN_STREETS:
        return rng.choice(P.FOREIGN_STREETS[language]).format(n=rng.randint(1, 180))
    unit = rng.choice(("", f", Apt {rng.randint(1, 12)}{rng.choice('ABCD')}", f", Unit {rng.randint(1, 30)}"))
    return f"{rng.randint(12, 4800)} {rng.choice(P.STREETS)}{unit}"


_SLOT_MAKERS: dict[str, Callable[[random.Random, Context], str]] = {
    "product": lambda rng, ctx: ctx.sku.noun,
    "name": lambda rng, ctx: ctx.sku.name,
    "sku": lambda rng, ctx: ctx.sku.code,
    "brand": lambda rng, ctx: ctx.sku.brand,
    "size": _sized(0),
    "smaller": _sized(-1),
    "larger": _sized(1),
    "other_size": _other_size,
    "color": lambda rng, ctx: ctx.color or "the one I picked",
    "other_color": lambda rng, ctx: rng.choice([c for c in PALETTE if c != ctx.color]),
    "part": lambda rng, ctx: rng.choice(PARTS[ctx.sku.subcategory]),
    "accessory": lambda rng, ctx: rng.choice(ACCESSORIES.get(ctx.sku.subcategory, ("manual",))),
    "carrier": lambda rng, ctx: ctx.carrier,
    "days": _count_text(3, 21),
    "weeks": _count_text(2, 8),
    "hours": lambda rng, ctx: str(rng.randint(3, 8)),
    "date": _date_text,
    "order": lambda rng, ctx: ctx.order_id or "",
    "price": _price_text,
    "version": lambda rng, ctx: ctx.version,
    "device": lambda rng, ctx: rng.choice(P.DEVICES["ios" if ctx.platform == "ios" else "android"]),
    "item2": lambda rng, ctx: _with_article(rng.choice([s.noun for s in CATALOG if s.category != ctx.sku.category])),
    "a_product": lambda rng, ctx: _with_article(ctx.sku.noun),
    "weekday": lambda rng, ctx: P.WEEKDAYS[(ctx.day - timedelta(days=rng.randint(2, 6))).weekday()],
    "first": lambda rng, ctx: _capitalize(rng.choice(P.FIRST_NAMES)),
    "email": lambda rng, ctx: _email(rng),
    "phone": lambda rng, ctx: _phone(rng, ctx.language),
    "card": lambda rng, ctx: _luhn_card(rng),
    "address": lambda rng, ctx: _address(rng, ctx.language),
}


def _sentiment(label: str) -> str:
    if label == "praise_no_issue":
        return "positive"
    return "neutral" if label in ("feature_request", "other_unclear") else "negative"


class TextComposer:
    """Writes varied feedback text for given labels and context from one random source."""

    def __init__(self, rng: random.Random, *, pii_rate: float = PII_RATE) -> None:
        self.rng = rng
        self.pii_rate = pii_rate

    def expand(self, template: str, slots: Mapping[str, str]) -> str:
        """A template with alternatives picked and slots filled."""
        rng = self.rng
        text = "".join(p if isinstance(p, str) else p[int(rng.random() * len(p))] for p in _parts(template))
        return text.format_map(slots) if "{" in text else text

    def _template(self, bank: str, label: str, ctx: Context, incident: str | None, about_app: bool = False) -> str:
        """A clause template for the label: incident wording first, then the label's own and its tags'."""
        flags = ctx.flags
        focused = _pool(bank, f"{label}@{incident}", flags) if incident else ()
        if focused and self.rng.random() < 0.7:
            return self.rng.choice(focused)
        pool = _pool(bank, f"{label}/app", flags) if about_app else ()
        if not pool:
            pool = (_pool(bank, label, flags) + _pool(bank, f"{label}/{ctx.sku.subcategory}", flags)
                    + _pool(bank, f"{label}/{ctx.sku.category}", flags))
        if not pool and not focused:
            return self._template("en", label, ctx, incident, about_app)
        return self.rng.choice(pool or focused)

    def _clauses(self, bank: str, label: str, ctx: Context, slots: Slots, incident: str | None, count: int,
                 about_app: bool = False) -> list[str]:
        """Up to count clauses for the label, each from a different template."""
        templates: list[str] = []
        for _ in range(count):
            template = self._template(bank, label, ctx, incident, about_app)
            if template not in templates:
                templates.append(template)
        return [self.expand(template, slots) for template in templates]

    def _clause(self, bank: str, label: str, ctx: Context, slots: Slots, incident: str | None) -> str:
        return self.expand(self._template(bank, label, ctx, incident), slots)

    def _sentence(self, text: str, sentiment: str) -> str:
        text = _capitalize(text.strip())
        if text[-1:] in ".!?:":
            return text
        roll = self.rng.random()
        return text + ("!" if roll < 0.15 and sentiment != "neutral" else "" if roll > 0.97 else ".")

    def draft(self, channel: str, labels: Sequence[str], ctx: Context, incident: str | None = None) -> Draft:
        """Title and body for a feedback item about the labels (the first one leads)."""
        if ctx.language != "en" and labels[0] in P.FOREIGN[ctx.language]:
            return self._foreign(channel, labels, ctx, incident)
        rng, slots, primary = self.rng, Slots(self.rng, ctx), labels[0]
        sentiment = _sentiment(primary)
        style = "plain"
        if sentiment == "negative":
            roll = rng.random()
            if roll < 0.05 and primary in P.SARCASM:
                style = "sarcasm"
            elif roll < 0.2 and primary in PRODUCT_LABELS and channel != "app_store_reviews":
                style = "mixed"
        terse = channel in ("return_reasons", "surveys")
        sentences: list[str] = []
        context = _usable(P.CONTEXT[channel] + P.CONTEXT.get(f"{channel}/{ctx.sku.category}", ()), ctx.flags)
        if context and rng.random() < (0.15 if terse else 0.45):
            sentences.append(self.expand(rng.choice(context), slots))
        if channel == "return_reasons" and rng.random() < 0.25 and style == "plain":
            title_pool = P.HEADLINES.get(f"{primary}@{incident}") or P.HEADLINES[primary]
            sentences.append(self.expand(rng.choice(title_pool), slots).lower())
        elif style == "sarcasm":
            sentences.append(self.expand(rng.choice(P.SARCASM[primary]), slots))
        elif style == "mixed":
            sentences.append(self._mixed(primary, ctx, slots, incident))
        else:
            sentences.extend(self._plain(channel, primary, ctx, slots, incident, sentiment))
        for label in labels[1:]:
            lead = rng.choice(P.SECOND_ISSUE_LEADS)
            clause = self._clause("en", label, ctx, slots, incident)
            sentences.append(self._sentence(lead + clause if lead else clause, "negative"))
        closers = P.CLOSERS.get(channel, ()) if sentiment == "negative" else ()
        closers = closers + P.CLOSERS["negative" if style in ("mixed", "sarcasm") else sentiment]
        if rng.random() < (0.12 if terse else 0.45):
            sentences.append(self.expand(rng.choice(closers), slots))
        greeting = rng.choice(P.GREETINGS[channel]) if channel in P.GREETINGS and rng.random() < 0.7 else None
        signoff = self.expand(rng.choice(P.SIGNOFFS), slots) if greeting and rng.random() < 0.35 else None
        title = self._title(channel, primary, style, slots, incident)
        tone = "mixed" if style == "mixed" else sentiment
        return Draft(title, greeting, self._noisy(sentences, tone, ctx), signoff, tone, style)

    def _plain(self, channel: str, label: str, ctx: Context, slots: Slots, incident: str | None,
               sentiment: str) -> list[str]:
        rng = self.rng
        terse = channel in ("return_reasons", "surveys")
        count = 1 if terse and rng.random() < 0.7 else _draw(rng, _CLAUSE_COUNT_TABLE)
        clauses = self._clauses("en", label, ctx, slots, incident, count, channel == "app_store_reviews")
        sentences = [self._sentence(clauses[0], sentiment)]
        for clause in clauses[1:]:
            if rng.random() < 0.35:
                joint = rng.choice((", and ", " and ", " - ", "; ", ", plus "))
                sentences[-1] = self._sentence(sentences[-1].rstrip(".!") + joint + clause, sentiment)
            else:
                sentences.append(self._sentence(clause, sentiment))
        return sentences

    def _mixed(self, label: str, ctx: Context, slots: Slots, incident: str | None) -> str:
        rng = self.rng
        aspects = _usable(P.PRAISE_ASPECTS["any"] + P.PRAISE_ASPECTS[ctx.sku.category], ctx.flags)
        aspect = self.expand(rng.choice(aspects), slots)
        issue = self._clause("en", label, ctx, slots, incident)
        parts = {"aspect": aspect, "Aspect": _capitalize(aspect), "issue": issue, "Issue": _capitalize(issue)}
        return self._sentence(self.expand(rng.choice(P.MIXED_FORMS), parts), "negative")

    def _title(self, channel: str, label: str, style: str, slots: Slots, incident: str | None) -> str:
        rng = self.rng
        if channel in ("support_tickets", "marketplace_messages"):
            pool = _usable(P.SUBJECTS.get(label, ()), slots.ctx.flags) if rng.random() < 0.55 else ()
            return self.expand(rng.choice(pool or _usable(P.GENERIC_SUBJECTS, slots.ctx.flags)), slots)
        if channel not in ("product_reviews", "app_store_reviews") or rng.random() < 0.08:
            return ""
        key = style if style in ("mixed", "sarcasm") else label
        pool = P.HEADLINES.get(f"{key}@{incident}", ()) if incident and rng.random() < 0.5 else ()
        title = self.expand(rng.choice(pool or P.HEADLINES[key]), slots)
        return title.lower() if rng.random() < 0.1 else title

    def _foreign(self, channel: str, labels: Sequence[str], ctx: Context, incident: str | None) -> Draft:
        rng, bank = self.rng, P.FOREIGN[ctx.language]
        slots = Slots(rng, ctx)
        sentiment = _sentiment(labels[0])
        usable = [label for label in labels if label in bank]
        count = 2 if rng.random() < 0.3 and channel not in ("return_reasons", "surveys") else 1
        clauses = self._clauses(ctx.language, usable[0], ctx, slots, incident, count)
        clauses += [self._clause(ctx.language, label, ctx, slots, incident) for label in usable[1:]]
        sentences = [self._sentence(clause, sentiment) for clause in clauses]
        tone = "positive" if sentiment == "positive" else "negative"
        if rng.random() < 0.4:
            sentences.append(rng.choice(bank[f"closers_{tone}"]))
        greeting = rng.choice(bank["greetings"]) if channel in P.GREETINGS and rng.random() < 0.7 else None
        title = ""
        if channel in ("product_reviews", "app_store_reviews", "support_tickets", "marketplace_messages"):
            title = rng.choice(bank[f"headlines_{tone}"])
        return Draft(title, greeting, self._noisy(sentences, sentiment, ctx), None, sentiment, "foreign")

    def _noisy(self, sentences: list[str], sentiment: str, ctx: Context) -> list[str]:
        """Typos, casing, emoji, stretched punctuation and, rarely, a line of PII."""
        rng = self.rng
        if rng.random() < 0.08:
            index = rng.randrange(len(sentences))
            sentences[index] = self._typo(sentences[index])
        if rng.random() < 0.05:
            sentences = [s.lower() for s in sentences]
        elif sentiment == "negative" and rng.random() < 0.02:
            index = rng.randrange(len(sentences))
            sentences[index] = sentences[index].upper()
        if rng.random() < 0.05 and sentences[-1][-1:] in ".!":
            stretches = P.STRETCHES["positive" if sentiment == "positive" else "negative"]
            sentences[-1] = sentences[-1][:-1] + rng.choice(stretches)
        if rng.random() < 0.08:
            pool = P.POSITIVE_EMOJI if sentiment == "positive" else P.EMOJI
            index = rng.randrange(len(sentences))
            sentences[index] = f"{sentences[index]} {rng.choice(pool)}"
        if rng.random() < self.pii_rate:
            sentences.insert(rng.randint(min(1, len(sentences)), len(sentences)), self._pii(ctx))
        return sentences

    def _typo(self, sentence: str) -> str:
        rng = self.rng
        words = sentence.split(" ")
        known = [i for i, w in enumerate(words) if w.lower().strip(".,!?") in P.MISSPELLINGS]
        if known:
            i = rng.choice(known)
            bare = words[i].strip(".,!?")
            words[i] = words[i].replace(bare, P.MISSPELLINGS[bare.lower()])
            return " ".join(words)
        candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if not candidates:
            return sentence
        i = rng.choice(candidates)
        word, k = words[i], rng.randrange(len(words[i]) - 1)
        words[i] = word[:k] + word[k + 1] + word[k] + word[k + 2:]
        return " ".join(words)

    def _pii(self, ctx: Context) -> str:
        rng, slots = self.rng, Slots(self.rng, ctx)
        if ctx.language != "en":
            return self.expand(rng.choice(P.FOREIGN[ctx.language]["pii"]), slots)
        kind = _draw(rng, _PII_TABLE)
        return self.expand(rng.choice(P.PII_SENTENCES[kind]), slots)


def draft_body(draft: Draft) -> str:
    """The body as one plain-text message (greeting and sign-off on their own lines)."""
    body = " ".join(draft.sentences)
    if draft.greeting:
        body = f"{draft.greeting}\n{body}"
    return f"{body}\n{draft.signoff}" if draft.signoff else body


def html_body(rng: random.Random, draft: Draft) -> str:
    """The body as an HTML e-mail: paragraphs, line breaks and escaped entities."""

    def escape(text: str) -> str:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if rng.random() < 0.3:
            text = text.replace(" and ", " &amp; ").replace("'", "&#39;")
        return text

    middle = len(draft.sentences) // 2 or 1
    paragraphs = [" ".join(draft.sentences[:middle]), " ".join(draft.sentences[middle:])]
    parts = [f"<p>{escape(draft.greeting)}</p>"] if draft.greeting else []
    parts += [f"<p>{escape(p)}</p>" for p in paragraphs if p]
    if draft.signoff:
        parts.append("<p>" + "<br>".join(escape(line) for line in draft.signoff.split("\n")) + "</p>")
    if rng.random() < 0.3:
        parts.append("<br>--<br>Sent from my phone")
    return "".join(parts)


class World:
    """The simulated shop: customers, recent order history and the feedback they produce."""

    def __init__(self, rng: random.Random, start: date, days: int, items_per_day: int) -> None:
        self.rng = rng
        self.start = start
        self.days = days
        self.items_per_day = items_per_day
        self.incidents = plan_incidents(start, days, items_per_day)
        self.incident = {incident.id: incident for incident in self.incidents}
        self.composer = TextComposer(rng)
        self.codes = {name: Codes(rng, 6 if name == "orders" else 8) for name in ID_PREFIXES}
        self.codes["return_reasons"] = self.codes["returns"]  # a return request is the RMA it opens
        self.history: deque[OrderDay] = deque(maxlen=HISTORY_DAYS + 1)
        count = max(100, round(items_per_day * ORDER_LINES_PER_ITEM * days / 3.6))
        self.customers = [f"C-{n:06d}" for n in range(1, count + 1)]
        self.customer_regions = [_draw(rng, _REGION_TABLE) for _ in range(count)]
        self.customer_tiers = [_draw(rng, _TIER_TABLE) for _ in range(count)]
        self.customer_platforms = [_draw(rng, _PLATFORM_TABLE) for _ in range(count)]
        self.by_category = {c: [n for n, s in enumerate(CATALOG) if s.category == c] for c in CATEGORIES.values()}
        self.carry: dict[str, list[Item]] = {c: [] for c in FEEDBACK_CHANNELS}
        self.carry_rows: dict[str, list[object]] = {c: [] for c in FEEDBACK_CHANNELS}
        self.malformed = 0

    def round(self, expected: float) -> int:
        """Stochastic rounding: the integer part plus one with the fractional probability."""
        whole = int(expected)
        return whole + (self.rng.random() < expected - whole)

    # --- orders ---------------------------------------------------------------------------

    def orders(self, day: date, write_row: Callable[[Sequence[object]], object]) -> int:
        """Writes the day's order lines, remembers them for feedback to refer to; returns the count."""
        rng = self.rng
        volume = WEEKDAY_VOLUME[day.weekday()] * rng.uniform(0.92, 1.08)
        target = max(6, round(self.items_per_day * ORDER_LINES_PER_ITEM * volume))
        carrier = self.incident["carrier_delay"]
        carrier_window = carrier.onset - timedelta(days=4) <= day <= (carrier.end or day)
        android_dip = self.incident["checkout_bug_android"].intensity(day) > 0
        seconds = sorted(int(rng.random() * 86_400) for _ in range(max(1, round(target / 1.38))))
        today, prefix, customers = OrderDay(), f"{day.isoformat()}T", len(self.customers)
        for second in seconds:
            c = int(rng.random() * customers)
            region = self.customer_regions[c] if rng.random() < 0.95 else _draw(rng, _REGION_TABLE)
            platform = self.customer_platforms[c]
            if platform == "android" and android_dip and rng.random() < 0.3:
                platform = "web"
            if carrier_window and region == carrier.keys["region"] and rng.random() < 0.6:
                shipper = carrier.keys["carrier"]
            else:
                shipper = _draw(rng, _carriers(region))
            currency, rate, _ = CURRENCIES.get(region, ("USD", 1.0, "$"))
            order_id = ID_PREFIXES["orders"] + self.codes["orders"].next()
            hours, rest = divmod(second, 3600)
            stamp = f"{prefix}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"
            method, tier = _draw(rng, _SHIP_TABLE), self.customer_tiers[c]
            version = self.app_version(platform, day) if platform in APP_PLATFORMS else ""
            for line_no in range(1, _draw(rng, _LINES_TABLE) + 1):
                sku = _draw(rng, _SKU_TABLE)
                qty = 1 if rng.random() < 0.88 else 2
                roll = rng.random()
                price = round(CATALOG[sku].price * rate * (1.0 if roll < 0.85 else 0.85 if roll < 0.95 else 0.7), 2)
                write_row((order_id, line_no, stamp, self.customers[c], CATALOG[sku].code, qty, f"{price:.2f}",
                           currency, region, shipper, method, platform, tier, version))
                today.add(OrderLine(order_id, self.customers[c], sku, region, shipper, platform, price, qty, day))
        self.history.append(today)
        return len(today.lines)

    def pick_line(self, low: int, high: int, key: tuple[str, ...] | None = None) -> OrderLine | None:
        """A random order line placed low..high days ago (clamped to the history), optionally by key."""
        rng, available = self.rng, len(self.history)
        low, high = min(low, available - 1), min(high, available - 1)
        for _ in range(4):
            day = self.history[-1 - rng.randint(low, high)]
            if key is None:
                return rng.choice(day.lines)
            if positions := day.index.get(key):
                return day.lines[rng.choice(positions)]
        for offset in range(low, high + 1):
            if positions := self.history[-1 - offset].index.get(key):
                return self.history[-1 - offset].lines[rng.choice(positions)]
        return None

    def pick_return_line(self, low: int, high: int) -> OrderLine | None:
        """An order line for a return, favoring apparel as real returns do."""
        category = _draw(self.rng, _RETURN_CATEGORY_TABLE)
        sku = CATALOG[self.rng.choice(self.by_category[category])]
        return self.pick_line(low, high, ("sku", sku.code)) or self.pick_line(low, high)

    # --- feedback -------------------------------------------------------------------------

    def app_version(self, platform: str, day: date) -> str:
        """The app version a customer on this platform most likely runs on this day."""
        incident = self.incident["checkout_bug_android"]
        rng = self.rng
        if day < incident.onset:
            return rng.choice(("5.2.1", "5.2.1", "5.2.0"))
        if incident.last_spike_day is None or day <= incident.last_spike_day:
            return "5.3.0" if platform == "ios" or rng.random() < 0.85 else "5.2.1"
        return "5.3.1" if rng.random() < 0.8 else "5.3.0"

    def moment(self, day: date) -> datetime:
        """A time on the day in UTC, between 02:00 and 21:00 so local renderings keep the UTC date."""
        return datetime.combine(day, time(2), UTC) + timedelta(seconds=self.rng.randrange(19 * 3600))

    def language(self, region: str) -> str:
        table = _LANGUAGE_TABLES.get(region)
        return _draw(self.rng, table) if table else "en"

    def context(self, day: date, line: OrderLine | None, *, sku: Sku | None = None, region: str | None = None,
                platform: str | None = None) -> tuple[Context, str]:
        """A text context and the customer, from an order line or from a random customer."""
        rng = self.rng
        if line is not None:
            sku, region, customer, carrier = CATALOG[line.sku], line.region, line.customer, line.carrier
            platform = platform or line.platform
        else:
            c = rng.randrange(len(self.customers))
            customer, region = self.customers[c], region or self.customer_regions[c]
            sku = sku or CATALOG[_draw(rng, _SKU_TABLE)]
            carrier = _draw(rng, _carriers(region))
            platform = platform or self.customer_platforms[c]
        sizes = SIZES.get(sku.subcategory)
        size = rng.randint(1, len(sizes) - 2) if sizes else None
        ctx = Context(
            sku=sku, size=size, color=rng.choice(sku.colors) if sku.colors else None, carrier=carrier, region=region,
            day=day, order_id=line.order_id if line is not None else None,
            order_day=line.day if line is not None else None, platform=platform,
            version=self.app_version(platform, day), language=self.language(region),
        )
        return ctx, customer

    def labels(self, channel: str, ctx: Context, day: date) -> tuple[str, ...]:
        """Background labels for an item: one from the channel mix, sometimes a second."""
        primary = _draw(self.rng, _label_weights(channel, ctx.sku.category, day.weekday()))
        if primary in P.NEGATIVE_FREE or self.rng.random() >= 0.12:
            return (primary,)
        options = [label for label in P.CO_OCCUR.get(primary, ()) if _fits(label, ctx.sku.category)]
        return (primary, self.rng.choice(options)) if options else (primary,)

    def item(self, channel: str, day: date, labels: tuple[str, ...], ctx: Context, customer: str,
             line: OrderLine | None, incident: str | None = None) -> Item:
        """Composes an item's text and channel fields."""
        rng = self.rng
        draft = self.composer.draft(channel, labels, ctx, incident)
        zone = LANGUAGE_ZONES.get(ctx.language) if ctx.region == "eu" else None
        zone = zone or rng.choice(REGION_ZONES[ctx.region])
        extra: dict[str, object] = {}
        if channel == "app_store_reviews":
            customer = rng.choice(P.APP_AUTHORS) + (str(rng.randint(1, 99)) if rng.random() < 0.5 else "")
            extra["device"] = rng.choice(P.DEVICES["ios" if ctx.platform == "ios" else "android"])
        if channel in ("support_tickets", "marketplace_messages"):
            extra["html"] = rng.random() < (0.25 if channel == "support_tickets" else 0.2)
        return Item(channel, self.next_id(channel), self.moment(day), customer, ctx, zone, draft,
                    _rating(rng, channel, draft), extra, labels, line if ctx.order_id else None)

    def next_id(self, channel: str) -> str:
        code = self.codes[channel].next()
        if channel == "app_store_reviews":
            return f"gp:{code}" if self.rng.random() < 0.45 else f"as-{code}"
        return ID_PREFIXES[channel] + code

    def background(self, channel: str, day: date) -> Item:
        """One background item of the channel on the day."""
        rng = self.rng
        if channel == "app_store_reviews":
            line = None
            ctx, customer = self.context(day, None, platform="ios" if rng.random() < 0.4 else "android")
        else:
            low, high = ORDER_AGE[channel]
            line = self.pick_return_line(low, high) if channel == "return_reasons" else self.pick_line(low, high)
            ctx, customer = self.context(day, line)
        labels = self.labels(channel, ctx, day)
        if ctx.order_id and labels[0] in ORDERLESS_LABELS and rng.random() < 0.6:
            ctx = replace(ctx, order_id=None)
        return self.item(channel, day, labels, ctx, customer, line)

    def incident_item(self, incident: Incident, channel: str, day: date, chronic: bool = False) -> Item:
        """One extra item caused by an incident: by its spike, or (`chronic`) by the root cause before and after it."""
        rng = self.rng
        keys = {k: v for k, v in incident.keys.items() if k in incident.chronic_keys} if chronic else incident.keys
        key = replace(incident, keys=keys).order_key()
        low, high = (2, 9) if "carrier" in keys else ORDER_AGE.get(channel, (0, 0))
        line = self.pick_line(low, high, key) if key and channel in ORDER_AGE else None
        sku = CATALOG[SKU_INDEX[keys["sku"]]] if "sku" in keys else None
        ctx, customer = self.context(day, line, sku=sku, region=keys.get("region"), platform=keys.get("platform"))
        if "app_version" in keys:
            ctx = replace(ctx, version=keys["app_version"])
        if "carrier" in keys:
            ctx = replace(ctx, carrier=keys["carrier"])
        label = _draw(rng, _weighted(incident.labels))
        labels = (label,)
        if rng.random() < 0.12 and (options := P.CO_OCCUR.get(label)):
            labels = (label, rng.choice([o for o in options if _fits(o, ctx.sku.category)] or [label]))
        return self.item(channel, day, tuple(dict.fromkeys(labels)), ctx, customer, line, None if chronic else incident.id)


@cache
def _label_weights(channel: str, category: str, weekday: int) -> Table:
    boosted = WEEKDAY_LABEL_BOOST.get(weekday, ())
    pairs = [(label, weight * (1.25 if label in boosted else 1.0))
             for label, weight in CHANNEL_LABEL_WEIGHTS[channel].items() if _fits(label, category)]
    return _weighted(pairs)


def _fits(label: str, category: str) -> bool:
    return category in P.CATEGORY_ONLY.get(label, (category,))


_STARS = {"positive": ((5, 4, 3), (70, 27, 3)), "neutral": ((3, 4, 5, 2), (35, 35, 20, 10)),
          "mixed": ((3, 4, 2), (50, 35, 15)), "negative": ((1, 2, 3, 4, 5), (50, 31, 14, 3, 2))}
_NPS = {"positive": (8, 10), "neutral": (5, 8), "mixed": (5, 8), "negative": (0, 6)}


def _rating(rng: random.Random, channel: str, draft: Draft) -> int | None:
    """A star rating (1-5) or NPS (0-10) in line with the sentiment, with a little inconsistency."""
    if channel == "surveys":
        return rng.randint(*_NPS[draft.sentiment])
    if channel not in ("product_reviews", "app_store_reviews"):
        return None
    if draft.style == "sarcasm":
        return rng.choice((1, 1, 2))
    return rng.choices(*_STARS[draft.sentiment])[0]


# --- rendering in each channel's native shape -------------------------------------------------


def _local(item: Item) -> datetime:
    return item.at.astimezone(ZoneInfo(item.zone))


def _territory(rng: random.Random, item: Item) -> str:
    if item.ctx.region != "eu":
        return TERRITORIES[item.ctx.region]
    territory = EU_TERRITORIES[item.ctx.language]
    return territory if isinstance(territory, str) else rng.choice(territory)


def render(rng: random.Random, item: Item) -> dict[str, object]:
    """The item as its channel's export writes it (a CSV row as a dict, or a JSON object)."""
    ctx, draft = item.ctx, item.draft
    variant = _variant(ctx)
    match item.channel:
        case "product_reviews":
            return {
                "review_id": item.source_id, "submitted_at": _local(item).isoformat(timespec="seconds"),
                "product_sku": ctx.sku.code, "variant": variant, "stars": str(item.rating), "headline": draft.title,
                "body": draft_body(draft), "customer_id": item.customer, "order_ref": ctx.order_id or "",
                "ship_region": ctx.region, "verified_purchase": "true" if ctx.order_id else "false",
                "helpful_votes": str(int(rng.paretovariate(1.6)) - 1),
            }
        case "surveys":
            return {
                "response_id": item.source_id, "survey": "post_purchase",
                "completed_local": _local(item).strftime("%d.%m.%Y %H:%M"), "tz": item.zone,
                "nps_score": str(item.rating), "comment": draft_body(draft), "customer_ref": item.customer,
                "order_number": ctx.order_id or "", "region": ctx.region,
            }
        case "return_reasons":
            return {
                "return_id": item.source_id, "requested_at": _local(item).strftime("%Y-%m-%d %H:%M:%S %z"),
                "order_id": ctx.order_id or "", "sku": ctx.sku.code, "customer_id": item.customer,
                "region": ctx.region, "customer_comment": draft_body(draft),
                "return_method": rng.choice(("mail", "mail", "drop_off", "store")),
            }
        case "app_store_reviews":
            return {
                "id": item.source_id, "platform": ctx.platform, "app_version": ctx.version,
                "territory": _territory(rng, item), "language": ctx.language, "rating": item.rating,
                "title": draft.title, "content": draft_body(draft), "author_name": item.customer,
                "device": item.extra["device"], "updated": item.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        case "marketplace_messages":
            body = html_body(rng, draft) if item.extra["html"] else draft_body(draft)
            return {
                "message_id": item.source_id, "marketplace": rng.choice(("amazon", "ebay", "walmart")),
                "sent": format_datetime(_local(item)), "subject": draft.title, "body": body,
                "buyer": {"alias": item.customer}, "order_ref": ctx.order_id,
                "listing": {"seller_sku": ctx.sku.code, "title": ctx.sku.name, "variant": variant},
                "ship_to_region": ctx.region,
            }
    return _ticket(rng, item)


def _variant(ctx: Context) -> str:
    size = SIZES[ctx.sku.subcategory][ctx.size] if ctx.size is not None else None
    if ctx.sku.category == "beauty":
        return "100 ml" if ctx.sku.price < 30 else "50 ml"
    return "/".join(part for part in (ctx.color, size) if part)


def _ticket(rng: random.Random, item: Item) -> dict[str, object]:
    """A help-desk ticket: the customer's message split into chat turns or one e-mail, with replies."""
    draft, html = item.draft, bool(item.extra["html"])
    transcript: list[dict[str, object]] = []
    if html:
        transcript.append({"role": "customer", "text": html_body(rng, draft)})
    else:
        sentences = list(draft.sentences)
        if draft.greeting:
            sentences[0] = f"{draft.greeting} {sentences[0]}"
        if rng.random() < 0.3:
            transcript.append({"role": "bot", "text": P.BOT_LINES[0]})
        while sentences:
            take = rng.randint(1, 2)
            transcript.append({"role": "customer", "text": " ".join(sentences[:take])})
            sentences = sentences[take:]
            if sentences or rng.random() < 0.6:
                transcript.append({"role": "agent", "text": rng.choice(P.AGENT_LINES)})
    if html and rng.random() < 0.7:
        transcript.append({"role": "agent", "text": rng.choice(P.AGENT_LINES)})
    for turn_number, turn in enumerate(transcript):
        turn["at"] = int(item.at.timestamp()) + 45 * turn_number
    ctx = item.ctx
    return {
        "ticket_id": item.source_id, "created_at": int(item.at.timestamp()), "channel": "email" if html else "chat",
        "status": rng.choice(("open", "pending", "solved", "solved")), "subject": draft.title,
        "requester": {"id": item.customer, "locale": LOCALES[ctx.language]},
        "order": {"id": ctx.order_id, "sku": ctx.sku.code} if ctx.order_id else None,
        "region": ctx.region, "transcript": transcript,
    }


MALFORMED_KINDS = ("shape", "timestamp", "empty_text", "missing_id")


def malform(rng: random.Random, channel: str, record: dict[str, object], kind: str) -> object:
    """A broken version of a record: wrong shape, bad timestamp, no text or no id."""
    if kind == "timestamp":
        return {**record, TIME_FIELDS[channel]: rng.choice(BAD_TIMESTAMPS)}
    if kind == "missing_id":
        if channel in CSV_CHANNELS:
            return {**record, ID_FIELDS[channel]: ""}
        return {k: v for k, v in record.items() if k != ID_FIELDS[channel]}
    if kind == "empty_text":
        if channel == "support_tickets":
            turns = [{**t, "text": ""} if t["role"] == "customer" else t for t in record["transcript"]]
            return {**record, "subject": "", "transcript": turns}
        return {**record, **{name: "" for name in TEXT_FIELDS[channel]}}
    values = list(record.values())
    if channel in CSV_CHANNELS:
        return values[:-1] if rng.random() < 0.5 else [*values, "extra"]
    line = json.dumps(record, ensure_ascii=False)
    return values if rng.random() < 0.5 else line[: rng.randint(len(line) // 3, len(line) - 2)]


def write_feedback_file(path: Path, channel: str, rows: Iterable[object]) -> None:
    """Writes a channel's rows: dicts as full rows, lists as raw rows, strings as raw JSONL lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if channel in CSV_CHANNELS:
            writer = csv.writer(handle, delimiter=";" if channel == "surveys" else ",", lineterminator="\n")
            header = CSV_HEADERS[channel]
            writer.writerow(header)
            for row in rows:
                writer.writerow([row[c] for c in header] if isinstance(row, dict) else row)
            return
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")


def _returns_row(rma_id: str, line: OrderLine, reason: str, at: datetime, rng: random.Random) -> tuple[object, ...]:
    refund = line.unit_price * line.qty * (1.0 if rng.random() < 0.9 else 0.5)
    return (rma_id, line.order_id, CATALOG[line.sku].code, reason, f"{refund:.2f}", line.customer,
            at.strftime("%Y-%m-%dT%H:%M:%SZ"))


class DayWriter:
    """Produces and writes all files of one day."""

    def __init__(self, world: World, landing_dir: Path) -> None:
        self.world = world
        self.landing_dir = landing_dir

    def path(self, name: str, day: date, extension: str) -> Path:
        return self.landing_dir / name / f"{name}_{day.isoformat()}.{extension}"

    def run(self, day: date, last: bool) -> tuple[list[Path], int, int]:
        """Writes the day's files; returns them, the feedback records and the order lines written."""
        world, rng = self.world, self.world.rng
        orders_path = self.path("orders", day, "csv")
        orders_path.parent.mkdir(parents=True, exist_ok=True)
        with orders_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CSV_HEADERS["orders"])
            order_lines = world.orders(day, writer.writerow)
        volume = WEEKDAY_VOLUME[day.weekday()] * rng.uniform(0.9, 1.1)
        files = [orders_path]
        returns: list[tuple[object, ...]] = []
        records = 0
        for channel in FEEDBACK_CHANNELS:
            items = world.carry[channel]
            world.carry[channel] = []
            expected = world.items_per_day * CHANNEL_SHARES[channel] * volume
            items += [world.background(channel, day) for _ in range(world.round(expected))]
            for incident in world.incidents:
                if channel in incident.channels:
                    share = incident.shares[incident.channels.index(channel)]
                    count = world.round(incident.extra_per_day * incident.intensity(day) * share)
                    items += [world.incident_item(incident, channel, day) for _ in range(count)]
                    chronic = world.round(incident.chronic(day) * share)
                    items += [world.incident_item(incident, channel, day, chronic=True) for _ in range(chronic)]
            items.sort(key=lambda item: item.at)
            rows = self.hazards(channel, items, day, last)
            path = self.path(channel, day, "csv" if channel in CSV_CHANNELS else "jsonl")
            write_feedback_file(path, channel, rows)
            files.append(path)
            records += len(rows)
            if channel == "return_reasons":
                returns += self.returns_for_items(items)
        returns += self.background_returns(day, order_lines)
        returns.sort(key=lambda row: (row[6], row[0]))
        returns_path = self.path("returns", day, "csv")
        write_csv(returns_path, CSV_HEADERS["returns"], returns)
        files.append(returns_path)
        return files, records, order_lines

    def hazards(self, channel: str, items: list[Item], day: date, last: bool) -> list[object]:
        """Rows for the file with duplicates, resubmissions and malformed records mixed in."""
        world, rng = self.world, self.world.rng
        rows: list[object] = world.carry_rows[channel]
        world.carry_rows[channel] = []
        repeats: list[object] = []
        for item in items:
            record = render(rng, item)
            if rng.random() < MALFORMED_RATE:
                # In turn, so even a small sample holds every kind of breakage.
                rows.append(malform(rng, channel, record, MALFORMED_KINDS[world.malformed % len(MALFORMED_KINDS)]))
                world.malformed += 1
                continue
            rows.append(record)
            roll = rng.random()
            next_day = not last and rng.random() < 0.5
            if roll < DUPLICATE_RATE:
                (world.carry_rows[channel] if next_day else repeats).append(record)
            elif roll < DUPLICATE_RATE + RESUBMISSION_RATE and not item.extra.get("resubmitted"):
                later = world.moment(day + timedelta(days=1)) if next_day else min(
                    item.at + timedelta(minutes=rng.randint(5, 240)), datetime.combine(day, time(21, 59), UTC))
                again = replace(item, source_id=world.next_id(channel), at=later,
                                extra={**item.extra, "resubmitted": True})
                if next_day:
                    world.carry[channel].append(again)
                else:
                    repeats.append(render(rng, again))
        return rows + repeats

    def returns_for_items(self, items: list[Item]) -> list[tuple[object, ...]]:
        """An RMA for each original return request that names an order."""
        rng = self.world.rng
        rows = []
        for item in items:
            if item.order is not None and not item.extra.get("resubmitted"):
                reason = LABEL_REASON_CODES.get(item.labels[0], "changed_mind")
                rows.append(_returns_row(item.source_id, item.order, reason, item.at, rng))
        return rows

    def background_returns(self, day: date, order_lines: int) -> list[tuple[object, ...]]:
        """Returns without a comment: the steady background plus the incidents' extra returns."""
        world, rng = self.world, self.world.rng
        rows = []
        for _ in range(world.round(order_lines * BACKGROUND_RETURN_RATE)):
            if (line := world.pick_return_line(3, 28)) is not None:
                category = CATALOG[line.sku].category
                reason = _draw(rng, _REASON_TABLES[category])
                rows.append(self.rma(line, reason, day))
        for incident in world.incidents:
            if incident.return_reason is None:
                continue
            expected = (incident.extra_per_day * incident.intensity(day) + incident.chronic(day)) * 1.2
            for _ in range(world.round(expected)):
                if (line := world.pick_line(3, 28, incident.order_key())) is not None:
                    rows.append(self.rma(line, incident.return_reason, day))
        return rows

    def rma(self, line: OrderLine, reason: str, day: date) -> tuple[object, ...]:
        world = self.world
        at = datetime.combine(day, time(), UTC) + timedelta(seconds=world.rng.randrange(86_400))
        return _returns_row(ID_PREFIXES["returns"] + world.codes["returns"].next(), line, reason, at, world.rng)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Writes a comma-separated file with a header row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_catalog(path: Path, end_date: date) -> None:
    """Writes the SKU catalog snapshot."""
    rows = [(sku.code, sku.name, sku.category, sku.subcategory, sku.brand, f"{sku.price:.2f}", f"{sku.margin_pct:.1f}",
             (end_date - timedelta(days=sku.launch_days_ago)).isoformat()) for sku in CATALOG]
    write_csv(path, CSV_HEADERS["sku_catalog"], rows)


def generate_sample(landing_dir: Path, manifest_path: Path, *, days: int = 60, end_date: date,
                    items_per_day: int = 200, seed: int = 7) -> SampleSummary:
    """Writes `days` days of synthetic landing files ending on end_date, and the incident manifest."""
    if days < 1 or items_per_day < 1:
        raise ValueError("days and items_per_day must be at least 1")
    landing_dir, manifest_path = Path(landing_dir), Path(manifest_path)
    start = end_date - timedelta(days=days - 1)
    world = World(random.Random(seed), start, days, items_per_day)
    catalog_path = landing_dir / "sku_catalog" / f"sku_catalog_{end_date.isoformat()}.csv"
    write_catalog(catalog_path, end_date)
    files, feedback_items, orders = [catalog_path], 0, 0
    writer = DayWriter(world, landing_dir)
    for offset in range(days):
        day_files, records, lines = writer.run(start + timedelta(days=offset), offset == days - 1)
        files += day_files
        feedback_items += records
        orders += lines
    manifest = {
        "seed": seed, "days": days, "start_date": start.isoformat(), "end_date": end_date.isoformat(),
        "items_per_day": items_per_day, "incidents": [incident.manifest() for incident in world.incidents],
    }
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SampleSummary(files=files, feedback_items=feedback_items, orders=orders, manifest_path=manifest_path)
