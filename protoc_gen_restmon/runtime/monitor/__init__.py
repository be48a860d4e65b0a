"""Monitoring: call records, API keys, the stores behind them, and the admin API."""
