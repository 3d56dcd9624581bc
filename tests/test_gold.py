"""Gold layer: issues exploded per label and dimension, orders per value, priority scores, alerting config."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import yaml

from feedback_assets.alerts.config import parse_alerting
from feedback_assets.schemas import ORDERS, RETURNS_REFUNDS, SKU_CATALOG
from feedback_assets.transforms.gold import issue_daily_metrics, series_commerce
from feedback_assets.transforms.priority import COMPONENTS, IssueSignals, components, parse_priority, priority_score
from resources.settings import REPO_CONFIG_DIR

DAY = date(2026, 11, 10)
ISSUE_COLUMNS = ("feedback_id string, feedback_date date, label string, domain string, severity double, "
                 "churn_intent boolean, sentiment double, confidence double, sku string, region string, "
                 "channel string, platform string, app_version string, carrier string")


def _issue(feedback_id, label, sku="JKT-1042", region="us_west", channel="product_reviews", carrier=None, churn=False):
    return (feedback_id, DAY, label, "d", 0.6, churn, -0.5, 0.8, sku, region, channel, None, None, carrier)


def _order(order_id, sku="JKT-1042", region="us_west", platform="web", app_version=None, revenue=10.0, day=DAY):
    return (order_id, "1", datetime(day.year, day.month, day.day, 12), "c", sku, 1, revenue, revenue, "USD", region, "UPS",
            "standard", platform, "regular", app_version, day)


def test_each_issue_counts_once_per_dimension_value_with_orders_per_1k(spark):
    issues = spark.createDataFrame([
        _issue("a", "size_runs_small", churn=True), _issue("b", "size_runs_small"),
        _issue("c", "size_runs_small", sku="TOP-1", region="us_east", carrier="FedEx"),
        _issue("a", "fit_cut_issue"),
    ], ISSUE_COLUMNS)
    orders = spark.createDataFrame([_order(f"o{i}") for i in range(4)] + [_order("o9", sku="TOP-1", region="us_east")],
                                   ORDERS)
    rows = {(r["label"], r["dimension"], r["value"]): r.asDict()
            for r in issue_daily_metrics(issues, orders, ["sku", "region", "channel", "carrier"]).collect()}
    jacket = rows[("size_runs_small", "sku", "JKT-1042")]
    assert jacket["complaints"] == 2 and jacket["churn_items"] == 1
    assert jacket["orders"] == 4 and jacket["complaints_per_1k_orders"] == 500.0
    assert rows[("size_runs_small", "channel", "product_reviews")]["complaints"] == 3
    assert rows[("size_runs_small", "channel", "product_reviews")]["orders"] is None
    assert rows[("size_runs_small", "carrier", "FedEx")]["complaints"] == 1
    assert rows[("fit_cut_issue", "region", "us_west")]["complaints"] == 1
    # size_runs_small: 2 SKUs, 2 regions, 1 channel, 1 carrier; fit_cut_issue: no carrier, so 3.
    assert len(rows) == 9 and all(value is not None for _, _, value in rows)


def _config():
    return parse_priority((REPO_CONFIG_DIR / "priority.yaml").read_bytes())


def _signals(**overrides) -> IssueSignals:
    base = {"complaints": 10, "baseline_weekly_mean": 5.0, "mean_severity": 0.5, "churn_share": 0.1,
            "revenue_share": 0.01, "return_rate": 0.05, "high_value_share": 0.1, "mean_confidence": 0.7}
    return IssueSignals(**(base | overrides))


def test_every_component_is_scaled_to_the_unit_interval_and_kept_with_the_score():
    config = _config()
    parts = components(_signals(complaints=500, baseline_weekly_mean=1, revenue_share=0.5, return_rate=2.0), config)
    assert set(parts) == set(COMPONENTS) and all(0.0 <= v <= 1.0 for v in parts.values())
    assert parts["volume"] == 1.0 and parts["velocity"] == 1.0 and parts["revenue_share"] == 1.0


def test_a_fast_growing_issue_on_a_big_seller_outranks_a_steady_one_on_a_niche_item():
    config = _config()
    hot = priority_score(components(_signals(complaints=30, baseline_weekly_mean=5, revenue_share=0.06), config), config)
    steady = priority_score(components(_signals(complaints=30, baseline_weekly_mean=30, revenue_share=0.002), config), config)
    assert 0 <= steady < hot <= 100


def test_priority_weights_must_name_every_component():
    document = yaml.safe_load((REPO_CONFIG_DIR / "priority.yaml").read_text())
    del document["weights"]["churn_intent"]
    with pytest.raises(ValueError, match="churn_intent"):
        parse_priority(yaml.safe_dump(document).encode())


def test_alerting_thresholds_apply_per_label_and_labels_can_be_muted():
    config = parse_alerting(yaml.safe_load((REPO_CONFIG_DIR / "alerting.yaml").read_text()))
    assert not config.alerts_on("praise_no_issue") and config.alerts_on("size_runs_small")
    assert config.thresholds_for("feature_request").min_count > config.thresholds_for("size_runs_small").min_count
    assert config.thresholds_for("feature_request", "sku").alpha == config.defaults.alpha
    assert config.lookback_days >= 28 + config.defaults.cooldown_days


def test_a_label_setting_wins_over_its_dimension_setting():
    config = parse_alerting({"dimensions": {"sku": {}, "region": {"alpha": 1e-4, "min_count": 8}},
                             "labels": {"checkout_payment_issue": {"min_count": 4}}})
    assert config.dimensions == ("sku", "region")
    assert config.thresholds_for("defect_or_damage", "region").alpha == 1e-4
    assert config.thresholds_for("checkout_payment_issue", "region").min_count == 4
    assert config.thresholds_for("checkout_payment_issue", "sku").alpha == config.defaults.alpha


def test_a_misspelled_threshold_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="min_cuont"):
        parse_alerting({"dimensions": {"sku": {}}, "labels": {"defect_or_damage": {"min_cuont": 3}}})


def test_series_commerce_prices_every_value_orders_carry_and_returns_land_on_their_orders_values(spark):
    earlier = date(2026, 10, 20)
    orders = spark.createDataFrame([
        _order("o1", platform="android", app_version="5.3.0", revenue=80.0),
        _order("o2", platform="android", app_version="5.3.0", revenue=20.0),
        _order("o3", sku="TOP-1", region="us_east", platform="web", revenue=50.0),
    ], ORDERS)
    history = orders.unionByName(spark.createDataFrame(
        [_order("o0", platform="android", app_version="5.2.1", revenue=30.0, day=earlier)], ORDERS))
    returns = spark.createDataFrame([("r1", "o0", "JKT-1042", "defective", 30.0, "c", datetime(2026, 11, 10, 9), DAY)],
                                    RETURNS_REFUNDS)
    catalog = spark.createDataFrame([("JKT-1042", "Jacket", "apparel", "outerwear", "b", 80.0, 0.5, None, DAY),
                                     ("TOP-1", "Top", "apparel", "tops", "b", 50.0, 0.2, None, DAY)], SKU_CATALOG)
    rows = {(r["dimension"], r["value"]): r.asDict() for r in series_commerce(orders, history, returns, catalog).collect()}
    assert rows[("platform", "android")]["orders"] == 2 and rows[("platform", "android")]["revenue"] == 100.0
    assert rows[("app_version", "5.3.0")]["margin"] == 50.0
    assert rows[("all", "all")]["orders"] == 3 and rows[("all", "all")]["revenue"] == 150.0
    # The return of an older order counts on that order's platform and app version, not on today's orders.
    assert rows[("app_version", "5.2.1")]["returns"] == 1 and rows[("app_version", "5.2.1")]["orders"] == 0
    assert rows[("platform", "android")]["refunds"] == 30.0 and rows[("all", "all")]["returns"] == 1
    assert ("app_version", None) not in rows and ("platform", "web") in rows
