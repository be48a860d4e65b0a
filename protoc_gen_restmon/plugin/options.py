"""The plugin's options (`--restmon_opt=k=v,…`), parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass

from protoc_gen_restmon.plugin.errors import GenerationError, Where

OUTPUTS = ("dataclasses", "routes", "monitor", "openapi")
# Without `outputs=`: the three Python outputs. The OpenAPI document is asked for
# (`outputs=…+openapi`), so builds and golden files made before it existed stay as they were.
DEFAULT_OUTPUTS = ("dataclasses", "routes", "monitor")

# betterproto's own options, passed through to its compiler unchanged.
BETTERPROTO_FLAGS = ("pydantic_dataclasses", "INCLUDE_GOOGLE")
BETTERPROTO_TYPING = ("typing.direct", "typing.root", "typing.310")

_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class Options:
    """What to write and how. Built only by `parse_options`, so every value is checked."""

    outputs: frozenset[str] = frozenset(DEFAULT_OUTPUTS)
    betterproto: tuple[str, ...] = ()  # pass-through flags, in the order given
    generate_unbound_methods: bool = False
    http_config: str | None = None  # a gRPC API Configuration YAML file with `http: rules:`
    # Same route in two different services: an error, or (for services served apart) a warning.
    duplicate_routes: str = "error"
    # None: as the http_config YAML says (false without one); given, it wins over the YAML.
    fully_decode_reserved_expansion: bool | None = None
    # One OpenAPI document for the whole run (`openapi.json` at the output root) instead of one
    # per package; only with the openapi output.
    openapi_merge: bool = False
    # `format=none`: the dataclass modules as betterproto renders them, without black (black is
    # about two thirds of generating them). Same code, other layout: for builds that only import
    # the modules (CI over large trees); the default `black` is betterproto's own output.
    black: bool = True

    @property
    def betterproto_parameter(self) -> str:
        return ",".join(self.betterproto)

    @property
    def pydantic(self) -> bool:
        return "pydantic_dataclasses" in self.betterproto


def parse_options(parameter: str) -> Options:
    """Parse `CodeGeneratorRequest.parameter`.

    >>> parse_options("outputs=routes+monitor,typing.310").outputs == {"routes", "monitor"}
    True
    """
    outputs: frozenset[str] = frozenset(DEFAULT_OUTPUTS)
    passthrough: list[str] = []
    unbound = False
    http_config: str | None = None
    duplicates = "error"
    fully_decode: bool | None = None
    merge = False
    black = True
    for item in filter(None, (part.strip() for part in parameter.split(","))):
        key, has_value, value = item.partition("=")
        if not has_value and (key in BETTERPROTO_FLAGS or key in BETTERPROTO_TYPING):
            passthrough.append(key)
        elif key == "outputs" and has_value:
            outputs = _parse_outputs(value)
        elif key == "generate_unbound_methods":
            unbound = _parse_bool(key, value) if has_value else True
        elif key == "http_config":
            if not value:
                raise _option_error("http_config needs a file name: http_config=FILE.yaml")
            http_config = value
        elif key == "duplicate_routes":
            if value not in ("error", "warn"):
                raise _option_error(f"duplicate_routes={value!r}: expected error or warn")
            duplicates = value
        elif key == "fully_decode_reserved_expansion":
            fully_decode = _parse_bool(key, value) if has_value else True
        elif key == "openapi_merge":
            merge = _parse_bool(key, value) if has_value else True
        elif key == "format":
            if value not in ("black", "none"):
                raise _option_error(f"format={value!r}: expected black or none")
            black = value == "black"
        else:
            raise _option_error(f"unknown option {item!r}; known: {_known()}")
    if sum(flag.startswith("typing.") for flag in passthrough) > 1:
        raise _option_error("give at most one of " + ", ".join(BETTERPROTO_TYPING))
    if merge and "openapi" not in outputs:
        raise _option_error("openapi_merge needs the openapi output: outputs=…+openapi")
    return Options(
        outputs, tuple(passthrough), unbound, http_config, duplicates, fully_decode, merge, black
    )


def _parse_outputs(value: str) -> frozenset[str]:
    chosen = frozenset(filter(None, value.split("+")))
    unknown = sorted(chosen - set(OUTPUTS))
    if unknown or not chosen:
        raise _option_error(
            f"outputs={value!r}: choose one or more of {'+'.join(OUTPUTS)} joined by '+'"
        )
    return chosen


def _parse_bool(key: str, value: str) -> bool:
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise _option_error(f"{key}={value!r}: expected true or false") from None


def _known() -> str:
    names = [
        "outputs=dataclasses+routes+monitor+openapi",
        "generate_unbound_methods[=true|false]",
        "http_config=FILE.yaml",
        "duplicate_routes=error|warn",
        "fully_decode_reserved_expansion[=true|false]",
        "openapi_merge[=true|false]",
        "format=black|none",
        *BETTERPROTO_FLAGS,
        *BETTERPROTO_TYPING,
    ]
    return ", ".join(names)


def _option_error(why: str) -> GenerationError:
    return GenerationError.one(Where("--restmon_opt"), why)
