"""The runtime's configuration error: raised when something is built, never while serving.

`Gateway(...)`, `Monitor(...)`, `AdminApp(...)` and the generated packages they load check their
arguments once, when they are built; every mistake found there is a `ConfigError` whose message
names the argument and what is wrong with it. (Bad requests are `status.RpcError`s, answered to the
client; store failures are `monitor.model.StoreError`s, counted and survived.) It is a `ValueError`,
so code written against earlier releases, which raised plain `ValueError`s, keeps working.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A mistake in how the runtime is configured, e.g. a package without generated modules."""
