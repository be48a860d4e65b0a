"""protoc-gen-restmon: a protoc plugin (betterproto dataclasses, REST routes, monitoring) and its runtime."""

__version__ = "0.1.0"
