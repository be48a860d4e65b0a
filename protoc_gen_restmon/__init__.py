"""protoc-gen-restmon: a protoc plugin (dataclasses, REST routes, monitoring) and its runtime."""

__version__ = "0.1.0"
