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

LAB = """\
# orderpipe settings: a relational export (written by `orderpipe init --preset lab`), as the
# lab's dataset and many shops' database exports come: three tables in files of their own.
#   orders*.csv       one row per order:  order_id,user_id,status,created_at,...,num_of_item
#   order_items*.csv  one row per item:   id,order_id,...,product_id,...,sale_price
#   products*.csv     the catalog:        id,sku,cost,category,name,brand,retail_price,department
# Each file is a batch of its own, in any order: an order counts once its header and at least
# one of its items are in; items whose header has not come yet wait (`orderpipe status`).

categories = ["Beauty", "Books", "Clothing", "Electronics", "Home & Kitchen", "Sports", "Toys"]

[input]
grain = "relational"             # headers, items and products in files told apart by name
header_files = "orders*.csv"
line_files = "order_items*.csv"
catalog = true                   # a line's category is its product's in the latest catalog
catalog_files = "products*.csv"  # ("Unknown" until a catalog names the product)
timezone = "UTC"                 # an order's date is the local date of created_at here; a
                                 # timestamp without an offset (the lab's) keeps its own date

[input.columns]                  # our name = the files' header
customer_id = "user_id"          # headers
order_timestamp = "created_at"   # headers
items_expected = "num_of_item"   # headers, optional: fewer items in = shown as incomplete
line_id = "id"                   # items: an item sent again with the same id replaces it
unit_price = "sale_price"        # items: each item is one unit at this price
# order_id = "order_id"          # both headers and items
# product_id = "product_id"      # items

[input.returned]                 # an order is returned when its header's status is one of these
column = "status"
values = ["returned"]

[input.catalog_columns]          # products*.csv
product_id = "id"
category = "category"
"""

#: Preset name -> the file's text.
PRESETS: dict[str, str] = {"seed": SEED, "shopify": SHOPIFY, "lab": LAB}
