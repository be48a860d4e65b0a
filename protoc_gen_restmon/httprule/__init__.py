"""google.api.http path templates: parse, print back, and compile for the matcher."""

from protoc_gen_restmon.httprule.compile import (
    CompiledTemplate,
    CompiledVariable,
    compile_template,
    shape,
)
from protoc_gen_restmon.httprule.parse import TemplateSyntaxError, parse_template
from protoc_gen_restmon.httprule.types import (
    DeepWildcard,
    Literal,
    Segment,
    Template,
    TemplateSegment,
    Variable,
    Wildcard,
)

__all__ = [
    "CompiledTemplate",
    "CompiledVariable",
    "DeepWildcard",
    "Literal",
    "Segment",
    "Template",
    "TemplateSegment",
    "TemplateSyntaxError",
    "Variable",
    "Wildcard",
    "compile_template",
    "parse_template",
    "shape",
]
