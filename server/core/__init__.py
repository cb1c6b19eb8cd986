"""The bottom layer: database, SQL helpers, clock, enums, domain errors, crypto, geo, audit.

Imports nothing from the rest of the service and nothing from Flask (tests/test_architecture.py).
"""
