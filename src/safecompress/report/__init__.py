"""Reporting helpers: figures and summaries built from finished runs."""
