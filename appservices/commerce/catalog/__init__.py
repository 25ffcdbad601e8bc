"""The catalog: a shop's products, their import from CSV, product cards and price alerts."""
