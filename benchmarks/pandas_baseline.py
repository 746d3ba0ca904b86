"""The baseline a user would otherwise write: a tutorial-style pandas job.

`pd.read_csv`, a per-row `apply` for the date check, boolean masks for the other rules,
`groupby` for the KPIs. It validates and aggregates only (no facts, no archive, no ledger).
"""

from __future__ import annotations

import sys
from datetime import datetime

import pandas as pd

CATEGORIES = ["Electronics", "Books", "Clothing", "Home", "Toys", "Sports", "Beauty", "Grocery"]


def valid_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
        return True
    except (TypeError, ValueError):
        return False


def main(path: str) -> None:
    df = pd.read_csv(path, dtype={"order_id": str, "customer_id": str, "product_id": str, "order_date": str})
    bad = (
        ~df["order_date"].apply(valid_date)
        | (df["quantity"] <= 0)
        | (df["unit_price"] <= 0)
        | ~df["category"].isin(CATEGORIES)
        | ~df["returned"].astype(str).str.lower().isin(["true", "false"])
        | df[["order_id", "customer_id", "product_id"]].isna().any(axis=1)
    )
    if bad.any() or df["order_id"].duplicated().any():
        print("invalid", int(bad.sum()))
        sys.exit(1)
    df["returned"] = df["returned"].astype(str).str.lower() == "true"
    df["revenue"] = df["quantity"] * df["unit_price"]
    category = df.groupby(["category", "order_date"]).agg(
        daily_revenue=("revenue", "sum"), orders=("order_id", "nunique"), returned=("returned", "sum")
    )
    category["avg_order_value"] = (category["daily_revenue"] / category["orders"]).round(2)
    category["avg_return_rate"] = (category["returned"] / category["orders"]).round(6)
    daily = df.groupby("order_date").agg(
        total_orders=("order_id", "nunique"),
        total_revenue=("revenue", "sum"),
        total_items_sold=("quantity", "sum"),
        returned=("returned", "sum"),
        unique_customers=("customer_id", "nunique"),
    )
    daily["return_rate"] = (daily["returned"] / daily["total_orders"]).round(6)
    print(len(category), "category rows;", len(daily), "daily rows;", int(daily["total_orders"].sum()), "orders")


if __name__ == "__main__":
    main(sys.argv[1])
