"""The configuration reference, generated from the settings models of every component."""

from __future__ import annotations

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from rhime import catalogue
from rhime.kit.settings import Settings


def settings_type(component: catalogue.Component) -> type[Settings]:
    return component.load()[1]


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "(required)"
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    if value is None or value == "":
        return "—"
    return f"`{value}`"


def _rows(model: type[Settings], names: set[str] | None = None) -> list[str]:
    prefix = str(model.model_config.get("env_prefix", ""))
    rows = []
    for name, field in model.model_fields.items():
        if names is not None and name not in names:
            continue
        env = (field.alias or prefix + name).upper()
        doc = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env}` | {_default(field)} | {doc} |")
    return rows


def reference() -> str:
    """Markdown: the shared settings, then what each component adds."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings models by `rhime config`; do not edit by hand.",
        "Every component reads these environment variables; Kubernetes injects them from the",
        "operator's ConfigMaps and Secrets, `rhime up` sets them for local processes.",
        "",
        "## Every component",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
        *_rows(Settings),
    ]
    shared = set(Settings.model_fields)
    for component in catalogue.COMPONENTS:
        try:
            model = settings_type(component)
        except ModuleNotFoundError:
            continue
        own = set(model.model_fields) - shared
        if not own:
            continue
        lines += [
            "",
            f"## {component.name}",
            "",
            "| variable | default | meaning |",
            "|---|---|---|",
            *_rows(model, own),
        ]
    return "\n".join(lines) + "\n"
