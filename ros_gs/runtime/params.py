"""Typed node parameters, loaded from the YAML files that ``ros2 launch`` passes.

Each node declares a pydantic model (defaults, descriptions, ranges).  The same YAML file
(standard ROS 2 layout: ``node_name: {ros__parameters: {...}}``, ``/**`` for all nodes) feeds
the replay runtime, the CLI and, through ``declare_parameter``, rclpy: one source of truth.
Nested models map to ROS's dotted parameter names (``sync.slop_s``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ros_gs.errors import ConfigError

P = TypeVar("P", bound=BaseModel)

#: Parameters every rclpy node has; a YAML may set them for any node, so the typed models skip them.
ROS_RESERVED = frozenset({"use_sim_time", "start_type_description_service"})
ROS_RESERVED_PREFIXES = ("qos_overrides.",)


def is_ros_reserved(name: str) -> bool:
    """True for parameters rclpy declares or interprets itself (never part of a node's model)."""
    return name in ROS_RESERVED or name.startswith(ROS_RESERVED_PREFIXES)


class NodeParams(BaseModel):
    """Base for node parameter models: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    diagnostics_period_s: float = Field(1.0, ge=0.0, le=3600.0, description="publish the node's status (input rates, time per message, skipped inputs and why, its own figures) on /diagnostics this often (s); 0: never")


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (ROS parameter names)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def unflatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"parameter {name!r} clashes with a value at {part!r}")
        node[leaf] = value
    return out


def read_param_file(path: Path | str) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 parameter YAML into ``{node_key: {flat_name: value}}``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read parameter file {path}: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"parameter file {path} is not UTF-8 text: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"parameter file {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"parameter file {path}: top level must be a mapping of node names")
    out: dict[str, dict[str, Any]] = {}
    for node_key, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters"), (dict, type(None))) or "ros__parameters" not in body:
            raise ConfigError(f"parameter file {path}: {node_key!r} must hold 'ros__parameters'")
        out[str(node_key)] = flatten(body.get("ros__parameters") or {})
    return out


def _matches(node_key: str, node_name: str) -> bool:
    key = node_key.lstrip("/")
    return key in ("**", node_name.lstrip("/")) or key.endswith("/" + node_name.lstrip("/"))


def load_params(
    model: type[P],
    node_name: str,
    files: Iterable[Path | str | Mapping[str, Any]] = (),
    overrides: Mapping[str, Any] | None = None,
) -> P:
    """Resolve a node's parameters: model defaults < files (in order, ``/**`` first) < overrides.
    A mapping among ``files`` holds this node's own values (a launch file's inline ``param``)."""
    merged: dict[str, Any] = {}
    for path in files:
        if isinstance(path, Mapping):
            merged.update(flatten(path))
            continue
        per_node = read_param_file(path)
        for key in sorted(per_node, key=lambda k: k.lstrip("/") != "**"):
            if _matches(key, node_name):
                merged.update(per_node[key])
    merged.update(flatten(overrides or {}))
    for name in [n for n in merged if is_ros_reserved(n)]:
        del merged[name]  # rclpy's own parameters, legal in any node's YAML
    return validate_params(model, node_name, merged)


def validate_params(model: type[P], node_name: str, flat: Mapping[str, Any]) -> P:
    """Build the model from flat ROS names; pydantic's complaints become one ConfigError."""
    try:
        return model.model_validate(unflatten(flat))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"invalid parameters for node {node_name!r}: {problems}") from None


def describe(model: type[BaseModel], prefix: str = "") -> list[dict[str, Any]]:
    """Flat list of ``{name, default, description, ge, le, type}`` for declaring or documenting."""
    rows: list[dict[str, Any]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(describe(ann, f"{prefix}{name}."))
            continue
        bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "le", "gt", "lt") if hasattr(m, k)}
        rows.append(
            {
                "name": f"{prefix}{name}",
                "default": field.get_default(call_default_factory=True),
                "description": field.description or "",
                "type": getattr(ann, "__name__", str(ann)),
                **bounds,
            }
        )
    return rows


def params_yaml(node_name: str, model: type[BaseModel], header: str = "") -> str:
    """Default parameters of a node as a commented ROS 2 parameter YAML (what config/*.yaml
    ship; ``ros-gs nodes --params NODE`` prints it): one ``name: value`` per flat (dotted)
    parameter, its description as the comment above."""
    import yaml

    lines = [f"# {ln}" if ln else "#" for ln in header.strip().splitlines()] if header.strip() else []
    lines += [f"{node_name}:", "  ros__parameters:"]
    for row in describe(model):
        value = row["default"]
        if isinstance(value, tuple):
            value = list(value)
        if row["description"]:
            lines.append(f"    # {row['description']}")
        dumped = yaml.safe_dump({row["name"]: value}, default_flow_style=True, width=10_000).strip()
        lines.append(f"    {dumped[1:-1] if dumped.startswith('{') else dumped}")
    return "\n".join(lines) + "\n"
