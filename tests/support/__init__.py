"""Support code for the tests: fixtures (registered by tests/conftest.py), servers, tools."""
