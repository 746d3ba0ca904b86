"""Commented `orderpipe.toml` files for the common shapes of input (`orderpipe init --preset`).

The Shopify preset follows the orders export (Admin → Orders → Export, "CSV for Excel, Numbers
or other spreadsheet programs"): one row per line item, the order's own fields (Email,
Financial Status, Created at, totals) filled on its first row only. Column names as the export
writes them; see docs/input-formats.md for where they were checked.
"""

from __future__ import annotations

__all__ = ["PRESETS"]

SEED = """\
# orderpipe settings: the seed format (written by `orderpipe init --preset seed`).
# One order per row, 8 columns in any order:
#   order_id,customer_id,order_date,category,product_id,quantity,unit_price,returned
# Every setting can also be given as an ORDERPIPE_* environment variable (docs: README).

categories = ["Electronics", "Books", "Clothing", "Home", "Toys", "Sports", "Beauty", "Grocery"]

[input]
grain = "order"                  # one order per row; "line" = one line item per row

# Other shapes (see docs/input-formats.md), for example:
# [input.columns]                # our name = the file's header
# order_id = "Order Number"
# order_timestamp = "Created at" # instead of order_date; needs input.timezone
# [input.returned]
# column = "Status"
# values = ["refunded", "returned"]
"""

SHOPIFY = """\
# orderpipe settings: Shopify's orders export (written by `orderpipe init --preset shopify`).
# Admin -> Orders -> Export -> "CSV for Excel, Numbers, or other spreadsheet programs".
# The export writes one row per line item; the order's own fields (Email, Financial Status,
# Created at, totals) are filled on the order's first row only, and later rows take them
# from there.

# The export has no product type column: categories come from the line's Vendor here.
# List your vendors (case-sensitive), or map `category` to another per-line column.
categories = ["Electronics", "Books", "Clothing", "Home", "Toys", "Sports", "Beauty", "Grocery"]

[input]
grain = "line"                   # an order spans rows, one per line item
timezone = "UTC"                 # your shop's time zone (IANA name, e.g. "Europe/Berlin"):
                                 # an order's date is the local date of "Created at" there

[input.columns]                  # our name = the export's header
order_id = "Name"                # "#1001"
customer_id = "Email"
order_timestamp = "Created at"   # "2025-10-07 09:50:26 +0200"
category = "Vendor"
product_id = "Lineitem sku"      # a line without a SKU is rejected (blank-value): give every variant a SKU
quantity = "Lineitem quantity"
unit_price = "Lineitem price"

[input.returned]                 # an order is returned when its financial status is one of these
column = "Financial Status"
values = ["refunded"]            # add "partially_refunded" to count partial refunds as returns

# Categories from a product list instead of the Vendor: add `catalog = true` under [input],
# remove `category = "Vendor"` above, and drop products*.csv files (one row per SKU with its
# type) into input/; a line takes its SKU's type, "Unknown" until a products file names it.
# Shopify's own products export fills Type on a product's first row only and adds rows
# without a SKU for extra images: keep one row per SKU with its type.
# [input.catalog_columns]
# product_id = "Variant SKU"
# category = "Type"
"""

#: Preset name -> the file's text.
PRESETS: dict[str, str] = {"seed": SEED, "shopify": SHOPIFY}
