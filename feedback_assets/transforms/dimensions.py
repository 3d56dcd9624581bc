"""The dimensions an order carries: complaints on these values can be put per order and priced."""

ORDER_DIMENSIONS = ("sku", "region", "platform", "carrier", "app_version")
# Returns arrive up to this long after their order: the orders a window's returns refer to lie this far back.
RETURN_REACH_DAYS = 90
# The `series_commerce` row that holds the whole shop's totals.
ALL = "all"
