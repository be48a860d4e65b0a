"""Views → module text, through the jinja2 templates of the top-level `templates/` folder."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from protoc_gen_restmon.plugin.views import MonitorView, RoutesView


def templates_dir() -> Path:
    """Inside a wheel the templates sit in the package; in a source checkout, beside it."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_routes(view: RoutesView) -> str:
    return _environment().get_template("routes.py.j2").render(view=view)


def render_monitor(view: MonitorView) -> str:
    return _environment().get_template("monitor.py.j2").render(view=view)
