"""HttpRules → validated, compiled bindings: every rule of docs/http-transcoding.md §1 is
checked here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.api import annotations_pb2, client_pb2, http_pb2
from google.protobuf.descriptor_pb2 import (
    FieldDescriptorProto,
    FileDescriptorProto,
    MethodDescriptorProto,
    ServiceDescriptorProto,
)

from protoc_gen_restmon.httprule import (
    CompiledTemplate,
    DeepWildcard,
    Literal,
    TemplateSyntaxError,
    Wildcard,
    compile_template,
    parse_template,
    shape,
)
from protoc_gen_restmon.plugin.descriptors import (
    SCALAR_WRAPPERS,
    DescriptorIndex,
    MessageInfo,
    json_name,
)
from protoc_gen_restmon.plugin.errors import GenerationError, Where
from protoc_gen_restmon.plugin.http_config import HttpConfig
from protoc_gen_restmon.runtime.protofiles.paths import FILE_SERVICE, METHOD_OPTIONS, SERVICE_METHOD
from protoc_gen_restmon.runtime.specs import (
    Binding,
    Cardinality,
    FieldPath,
    PathVariable,
    Segment,
    SegmentKind,
)

BODY_ALL = FieldPath(("*",), ("*",))


@dataclass(frozen=True, slots=True)
class MethodSite:
    """An RPC method and where it is declared."""

    file: FileDescriptorProto
    service: ServiceDescriptorProto
    method: MethodDescriptorProto
    where: Where

    @property
    def service_name(self) -> str:
        return (
            f"{self.file.package}.{self.service.name}" if self.file.package else self.service.name
        )

    @property
    def default_host(self) -> str:
        """`option (google.api.default_host)` of the service, "" when it has none."""
        options = self.service.options
        if not options.HasExtension(client_pb2.default_host):
            return ""
        return str(options.Extensions[client_pb2.default_host])

    @property
    def cardinality(self) -> Cardinality:
        client, server = self.method.client_streaming, self.method.server_streaming
        return Cardinality(f"{'stream' if client else 'unary'}_{'stream' if server else 'unary'}")


@dataclass(frozen=True, slots=True)
class SourcedRule:
    """An HttpRule and where it was written (a proto annotation or the http_config YAML)."""

    rule: http_pb2.HttpRule
    where: Where


class Problems:
    """Collects every problem of a run so that the user sees them all at once.

    `messages` are the lines for stderr that do not stop generation (warnings and notes).
    """

    def __init__(self) -> None:
        self.items: list[tuple[Where, str]] = []
        self.messages: list[str] = []

    def add(self, where: Where, why: str) -> None:
        self.items.append((where, why))

    def warn(self, where: Where, why: str) -> None:
        self.messages.append(f"{where}: warning: {why}")

    def note(self, where: Where, why: str) -> None:
        self.messages.append(f"{where}: note: {why}")

    def raise_if_any(self) -> None:
        if self.items:
            raise GenerationError(self.items)


def method_sites(index: DescriptorIndex, file: FileDescriptorProto) -> Iterator[MethodSite]:
    for s, service in enumerate(file.service):
        for m, method in enumerate(service.method):
            path = (FILE_SERVICE, s, SERVICE_METHOD, m)
            # The `option (google.api.http) = …` statement, else the `rpc` line. Not the bare
            # options path: protoc gives it once per option statement, so it may be another one.
            http_option = (*path, METHOD_OPTIONS, annotations_pb2.http.number)
            line = index.line(file.name, http_option) or index.line(file.name, path)
            element = ".".join(filter(None, (file.package, service.name, method.name)))
            yield MethodSite(file, service, method, Where(file.name, line, element))


def collect_bindings(
    index: DescriptorIndex,
    sites: list[MethodSite],
    config: HttpConfig,
    *,
    unbound_methods: bool,
    pydantic: bool,
    problems: Problems,
    warn_duplicates: bool = False,
    fully_decode_reserved_expansion: bool = False,
) -> dict[str, tuple[Binding, ...]]:
    """Every binding of every method, by service full name; problems go to `problems`.

    `fully_decode_reserved_expansion` is a field of google.api.Http, the whole service config:
    it applies to every binding of the run, annotated, YAML or unbound
    (docs/http-transcoding.md §1).
    """
    rules = _rules_by_method(index, sites, config, unbound_methods, problems)
    compiler = _BindingCompiler(index, pydantic, problems, fully_decode_reserved_expansion)
    result: dict[str, list[Binding]] = {site.service_name: [] for site in sites}
    placed: list[_Placed] = []
    for site in sites:
        for sourced, http_method, template in _flatten(rules.get(site.where.element), problems):
            binding = compiler.compile(site, sourced, http_method, template)
            if binding is not None:
                result[site.service_name].append(binding)
                placed.append(_Placed(binding, sourced.where, site.file.package, site.default_host))
    _check_duplicates(placed, problems, warn_duplicates)
    return {name: tuple(bindings) for name, bindings in result.items()}


def _rules_by_method(
    index: DescriptorIndex,
    sites: list[MethodSite],
    config: HttpConfig,
    unbound: bool,
    problems: Problems,
) -> dict[str, SourcedRule]:
    """The rule of each method: its annotation, replaced by a YAML rule for the same method.

    http.proto: "any transcoding specified in the service config will override any matching
    transcoding configuration in the proto". That is also how googleapis binds mixins (e.g.
    google.cloud.location.Locations under Cloud Tasks' `/v2`): the YAML rule replaces the
    mixin's own annotation, and the mixin stays a service of its own package.
    """
    rules: dict[str, SourcedRule] = {}
    for site in sites:
        if site.method.options.HasExtension(annotations_pb2.http):
            rule = site.method.options.Extensions[annotations_pb2.http]
            rules[site.where.element] = SourcedRule(rule, site.where)
    by_name = {site.where.element: site for site in sites}
    from_yaml: dict[str, Where] = {}
    for item in config.rules:
        if item.selector not in by_name:
            problems.add(item.where, _unmatched_selector(index, config, item.selector))
            continue
        if item.selector in from_yaml:
            first = from_yaml[item.selector]
            problems.add(
                item.where, f"a second rule for {item.selector} (the first: line {first.line})"
            )
            continue
        from_yaml[item.selector] = item.where
        replaced = rules.get(item.selector)
        if replaced is not None:
            problems.note(
                item.where,
                f"this rule replaces the google.api.http annotation of {item.selector} "
                f"at {replaced.where.file}:{replaced.where.line}",
            )
        rules[item.selector] = SourcedRule(item.rule, item.where)
    if unbound:
        for site in sites:
            rules.setdefault(site.where.element, _unbound_rule(site))
    return rules


def _unmatched_selector(index: DescriptorIndex, config: HttpConfig, selector: str) -> str:
    """Why a selector matches nothing; a method only imported (a mixin, say) is named."""
    why = f"selector {selector!r} matches no method of this run"
    service, _, method = selector.rpartition(".")
    declared = index.service_file(service)
    if declared is None or all(m.name != method for m in declared[1].method):
        return why
    listed = " (listed under `apis:`)" if service in config.apis else ""
    return (
        f"{why}: {service}{listed} is declared in {declared[0].name}, which is only imported; "
        "give that file to protoc too, so that its package gets the routes"
    )


def _unbound_rule(site: MethodSite) -> SourcedRule:
    """docs/http-transcoding.md §7: `POST /<package>.<Service>/<Method>` with `body: "*"`."""
    rule = http_pb2.HttpRule(post=f"/{site.service_name}/{site.method.name}", body="*")
    return SourcedRule(rule, site.where)


def _flatten(
    sourced: SourcedRule | None, problems: Problems
) -> Iterator[tuple[SourcedRule, str, str]]:
    """The rule and its additional_bindings, as (rule, HTTP method, template) triples."""
    if sourced is None:
        return
    for depth, rule in ((0, sourced.rule), *((1, r) for r in sourced.rule.additional_bindings)):
        kind = rule.WhichOneof("pattern")
        if depth and rule.additional_bindings:
            # Name the binding: a method may have several additional ones.
            named = f"template {_template_of(rule, kind)!r}: " if kind else ""
            problems.add(sourced.where, named + "additional_bindings may not nest (one level only)")
            continue
        if kind is None:
            problems.add(
                sourced.where,
                "an HttpRule needs a pattern: get, put, post, delete, patch or custom",
            )
            continue
        template = _template_of(rule, kind)
        http_method = rule.custom.kind if kind == "custom" else kind.upper()
        if not http_method:
            problems.add(sourced.where, f"custom pattern {template!r} has an empty kind")
            continue
        yield SourcedRule(rule, sourced.where), http_method, template


def _template_of(rule: http_pb2.HttpRule, kind: str) -> str:
    return rule.custom.path if kind == "custom" else str(getattr(rule, kind))


class _BindingCompiler:
    """Turns one (method, rule) pair into a Binding, or reports why it cannot."""

    def __init__(
        self, index: DescriptorIndex, pydantic: bool, problems: Problems, fully_decode: bool
    ) -> None:
        self.index = index
        self.pydantic = pydantic
        self.problems = problems
        self.fully_decode = fully_decode

    def compile(
        self, site: MethodSite, sourced: SourcedRule, http_method: str, template: str
    ) -> Binding | None:
        where = sourced.where
        try:
            compiled = compile_template(parse_template(template))
        except TemplateSyntaxError as err:
            self.problems.add(
                where, f"template {template!r}: {err.reason} at position {err.position}"
            )
            return None
        request = self.index.message(site.method.input_type)
        response = self.index.message(site.method.output_type)
        known = len(self.problems.items)
        variables = self._variables(compiled, request, template, where)
        body = self._body(sourced.rule.body, request, template, where)
        response_body = self._response_body(sourced.rule.response_body, response, template, where)
        if len(self.problems.items) > known:
            return None
        package = site.file.package
        return Binding(
            service=site.service_name,
            method=site.method.name,
            http_method=http_method,
            template=template,
            segments=tuple(_segment(s) for s in compiled.segments),
            variables=variables,
            verb=compiled.verb,
            body=body,
            response_body=response_body,
            request=self.index.message_ref(site.method.input_type, package, pydantic=self.pydantic),
            response=self.index.message_ref(
                site.method.output_type, package, pydantic=self.pydantic
            ),
            cardinality=site.cardinality,
            fully_decode_reserved_expansion=self.fully_decode,
        )

    def _variables(
        self, compiled: CompiledTemplate, request: MessageInfo, template: str, where: Where
    ) -> tuple[PathVariable, ...]:
        variables = []
        for var in compiled.variables:
            path, why = self._path_variable_field(request, var.field_path)
            if path is None:
                name = ".".join(var.field_path)
                self.problems.add(where, f"template {template!r}: variable {name!r} {why}")
            else:
                variables.append(PathVariable(path, var.start, var.end, var.reserved_expansion))
        return tuple(variables)

    def _path_variable_field(
        self, request: MessageInfo, names: tuple[str, ...]
    ) -> tuple[FieldPath | None, str]:
        """Resolve `a.b.c`: singular message fields, then a singular non-message leaf."""
        message, json_names = request, []
        for position, name in enumerate(names):
            field = message.field(name)
            if field is None:
                return None, f"names no field {name!r} in {message.full_name}"
            json_names.append(json_name(field))
            last = position == len(names) - 1
            if field.label == FieldDescriptorProto.LABEL_REPEATED:
                kind = "a map" if self.index.is_map(field) else "repeated"
                return None, f"{'ends at' if last else 'goes through'} {name!r}, which is {kind}"
            is_message = field.type == FieldDescriptorProto.TYPE_MESSAGE
            if last and is_message and field.type_name not in SCALAR_WRAPPERS:
                return None, (
                    f"must end at a scalar, enum or wrapper field, but {name!r} is "
                    f"a message of type {field.type_name.lstrip('.')}"
                )
            if not last:
                if not is_message:
                    return None, f"goes through {name!r}, which is not a message field"
                message = self.index.message(field.type_name)
        return FieldPath(names, tuple(json_names)), ""

    def _body(
        self, body: str, request: MessageInfo, template: str, where: Where
    ) -> FieldPath | None:
        if body in ("", "*"):
            return BODY_ALL if body else None
        return self._top_level(body, request, f"template {template!r}: body", where)

    def _response_body(
        self, name: str, response: MessageInfo, template: str, where: Where
    ) -> FieldPath | None:
        what = f"template {template!r}: response_body"
        return self._top_level(name, response, what, where) if name else None

    def _top_level(
        self, name: str, message: MessageInfo, what: str, where: Where
    ) -> FieldPath | None:
        field = message.field(name)
        if field is None:
            why = f"{what} {name!r} names no top-level field of {message.full_name}"
            self.problems.add(where, why)
            return None
        return FieldPath((name,), (json_name(field),))


def _segment(segment: Literal | Wildcard | DeepWildcard) -> Segment:
    if isinstance(segment, Literal):
        return Segment(SegmentKind.LITERAL, segment.value)
    if isinstance(segment, Wildcard):
        return Segment(SegmentKind.WILDCARD)
    return Segment(SegmentKind.DEEP_WILDCARD)


@dataclass(frozen=True, slots=True)
class _Placed:
    """A compiled binding, where its rule was written, and who would serve it."""

    binding: Binding
    where: Where
    package: str
    default_host: str  # "" when the service declares none

    def scopes(self) -> tuple[tuple[str, str], ...]:
        """The gateways this binding is bound to share: its package's, its host's."""
        package = (("package", self.package),)
        return (*package, ("host", self.default_host)) if self.default_host else package


def _check_duplicates(placed: list[_Placed], problems: Problems, warn: bool) -> None:
    """docs/http-transcoding.md §1: same HTTP method and same shape (variable names ignored).

    Two bindings conflict only where one gateway would serve both: within a package, or across
    packages whose services share a `google.api.default_host`. googleapis holds hundreds of
    same-shape pairs from different APIs on different hosts (automl and aiplatform both bind
    `/v1/{name=projects/*/locations/*/operations/*}`); those are no error here, and a gateway
    built with both refuses them (router.DuplicateRouteError).

    An error by default. Real APIs have pairs even within one service (googleapis' bigquery
    storage binds ReadRows and SplitReadStream to one shape), so `duplicate_routes=warn` lets
    them through with a warning; the gateway then refuses to serve both of a pair at once.
    """
    seen: dict[tuple[str, str, tuple[str, str]], _Placed] = {}
    for item in placed:
        binding = item.binding
        route = shape(parse_template(binding.template))
        keys = [(binding.http_method, route, scope) for scope in item.scopes()]
        first = next((seen[key] for key in keys if key in seen), None)
        for key in keys:
            seen.setdefault(key, item)
        if first is None:
            continue
        why = (
            f"duplicate route {binding.http_method} {binding.template!r}: same HTTP method "
            f"and shape as {first.binding.http_method} {first.binding.template!r} of "
            f"{first.binding.service}.{first.binding.method} ({first.where})"
        )
        if first.package != item.package:
            why += f", another package on the same host {item.default_host}"
        if warn:
            problems.warn(item.where, why)
        else:
            problems.add(item.where, why + " (the option duplicate_routes=warn accepts it)")
