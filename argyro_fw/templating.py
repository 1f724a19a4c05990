"""One Jinja environment for every rendered file: StrictUndefined, shell- and YAML-safe filters.

Templates hold layout only; values are prepared in Python. They are package data
(``argyro_fw/templates/<kind>/*.j2``) found through :func:`argyro_fw.paths.templates_dir`
(``importlib.resources``, or ``$ARGYRO_TEMPLATES`` when set). Any value that reaches a shell goes
through ``| sh`` (``shlex.quote``), any YAML scalar through ``| yaml``.
"""

from __future__ import annotations

import json
import shlex
from functools import lru_cache
from typing import Any

import jinja2

from .paths import templates_dir


def _yaml_scalar(value: Any) -> str:
    """A YAML flow scalar for ``value`` (JSON is a subset of YAML 1.2)."""
    return json.dumps(value)


def _sh(value: Any) -> str:
    return shlex.quote(str(value))


def environment(root: str | None = None) -> jinja2.Environment:
    """The Jinja environment over ``root`` (default: :func:`argyro_fw.paths.templates_dir`, looked up on
    each call so that ``$ARGYRO_TEMPLATES`` set later is honoured; one environment per folder)."""
    return _environment(str(root or templates_dir()))


@lru_cache(maxsize=4)
def _environment(root: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["sh"] = _sh
    env.filters["yaml"] = _yaml_scalar
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` (under argyro_fw/templates/, e.g. ``"vasp/KPOINTS.j2"``) with ``context``; a missing
    key raises."""
    return environment().get_template(template).render(**context)


def html_environment(root: str | None = None) -> jinja2.Environment:
    """The HTML twin of :func:`environment`: the same folder, StrictUndefined, but every ``{{ value }}`` is
    HTML-escaped (autoescape on); markup that is already safe (an embedded SVG) is marked with ``| safe``."""
    return _html_environment(str(root or templates_dir()))


@lru_cache(maxsize=4)
def _html_environment(root: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=True,
    )


def render_html(template: str, **context: Any) -> str:
    """Render an HTML ``template`` (e.g. ``"report/report.html.j2"``) with autoescaping; a missing key raises."""
    return html_environment().get_template(template).render(**context)


