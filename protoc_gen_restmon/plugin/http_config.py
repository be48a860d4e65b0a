"""HttpRules from a gRPC API Configuration YAML file (`http: rules: - selector: …`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from google.api import http_pb2
from google.protobuf import json_format

from protoc_gen_restmon.plugin.errors import GenerationError, Where

# The fields of google.api.Http (service config), in YAML form.
_HTTP_KEYS = ("rules", "fully_decode_reserved_expansion")


@dataclass(frozen=True, slots=True)
class ConfigRule:
    selector: str  # a method's full name: "bookstore.v1.Bookstore.GetBook"
    rule: http_pb2.HttpRule
    where: Where


@dataclass(frozen=True, slots=True)
class HttpConfig:
    rules: tuple[ConfigRule, ...] = ()
    fully_decode_reserved_expansion: bool = False
    # `apis: - name: …`: the interfaces the service serves, its mixins included (googleapis
    # lists google.cloud.location.Locations there); only read to explain unmatched selectors.
    apis: tuple[str, ...] = ()


def load_http_config(path: str) -> HttpConfig:
    """Read the `http` section of a service config file.

    The one file the plugin reads: the user names it with `http_config=FILE`. Relative paths are
    relative to the directory protoc runs in.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise GenerationError.one(Where(path), f"cannot read http_config: {err.strerror}") from None
    return parse_http_config(text, path)


def parse_http_config(text: str, path: str) -> HttpConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise GenerationError.one(
            _yaml_where(err, path), f"not valid YAML: {_one_line(err)}"
        ) from None
    http = data.get("http") if isinstance(data, dict) else None
    if not isinstance(http, dict):
        raise GenerationError.one(Where(path), "no `http:` section with `rules:`")
    unknown = sorted(str(key) for key in http if key not in _HTTP_KEYS)
    if unknown:
        known = ", ".join(_HTTP_KEYS)
        raise GenerationError.one(
            Where(path), f"unknown key(s) {unknown} in `http:`; known: {known}"
        )
    fully_decode = http.get("fully_decode_reserved_expansion", False)
    if not isinstance(fully_decode, bool):
        why = f"`http.fully_decode_reserved_expansion` must be true or false, not {fully_decode!r}"
        raise GenerationError.one(Where(path), why)
    rules = http.get("rules") or []
    if not isinstance(rules, list):
        raise GenerationError.one(Where(path), "`http.rules` must be a list")
    lines = _rule_lines(root, len(rules))
    problems: list[tuple[Where, str]] = []
    parsed = []
    for number, (raw, line) in enumerate(zip(rules, lines, strict=True), start=1):
        selector = raw.get("selector") if isinstance(raw, dict) else None
        where = Where(path, line, str(selector or f"rule #{number}"))
        try:
            parsed.append(_parse_rule(raw, where))
        except ValueError as err:
            problems.append((where, str(err)))
    if problems:
        raise GenerationError(problems)
    return HttpConfig(tuple(parsed), fully_decode, _api_names(data))


def _api_names(data: dict[object, object]) -> tuple[str, ...]:
    apis = data.get("apis")
    if not isinstance(apis, list):
        return ()
    return tuple(str(a["name"]) for a in apis if isinstance(a, dict) and "name" in a)


def _parse_rule(raw: object, where: Where) -> ConfigRule:
    if not isinstance(raw, dict) or not isinstance(raw.get("selector"), str):
        raise ValueError("each rule needs a `selector: package.Service.Method`")
    rule = http_pb2.HttpRule()
    try:
        json_format.ParseDict(raw, rule)
    except json_format.ParseError as err:
        raise ValueError(f"not a google.api.HttpRule: {_one_line(err)}") from None
    return ConfigRule(selector=rule.selector, rule=rule, where=where)


def _one_line(err: Exception) -> str:
    """An error's text on one line: GenerationError prints one line per problem."""
    if isinstance(err, yaml.MarkedYAMLError):
        text = ": ".join(filter(None, (err.context, err.problem)))
    else:
        text = str(err)
    return " ".join(text.split())


def _yaml_where(err: yaml.YAMLError, path: str) -> Where:
    mark = getattr(err, "problem_mark", None)
    return Where(path, mark.line + 1 if mark is not None else None)


def _rule_lines(root: yaml.Node | None, count: int) -> list[int | None]:
    """1-based line of each rule, found in the YAML node tree."""
    try:
        http = _child(root, "http")
        rules = _child(http, "rules")
        return [item.start_mark.line + 1 for item in rules.value][:count]
    except (KeyError, AttributeError, TypeError):
        return [None] * count


def _child(node: yaml.Node | None, key: str) -> yaml.Node:
    if not isinstance(node, yaml.MappingNode):
        raise KeyError(key)
    for k, v in node.value:
        if k.value == key:
            return v  # type: ignore[no-any-return]
    raise KeyError(key)
