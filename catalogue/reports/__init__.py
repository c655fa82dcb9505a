"""Managers' reports: cost, acceptance and ROI, read from the cost ledger
(generation.models.CostEntry) and the catalogue's entries (one per image, whatever its status).

``selectors`` computes every table (plain dicts of numbers, money as exact ``Decimal``, rounded
only when shown); ``views`` renders them as pages, CSV and chart data; the ``report`` command
prints the same tables as JSON. Reports only read.
"""
