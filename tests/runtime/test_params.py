"""Typed parameters from ROS 2 YAML: precedence, dotted names, ROS's own params, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.errors import ConfigError
from ros_gs.runtime.params import NodeParams, describe, load_params, read_param_file


class Sync(BaseModel):  # a nested group: a plain strict model (NodeParams is a node's top level)
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    slop_s: float = Field(0.02, ge=0.0, le=1.0, description="max stamp difference")


class Params(NodeParams):
    topic: str = Field("/a", description="input")
    rate: int = Field(5, gt=0)
    sync: Sync = Sync()


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_precedence_defaults_wildcard_node_overrides(tmp_path: Path) -> None:
    f1 = write(tmp_path / "a.yaml", {"mapper": {"ros__parameters": {"rate": 7}}, "/**": {"ros__parameters": {"rate": 1, "topic": "/all"}}})
    f2 = write(tmp_path / "b.yaml", {"/mapper": {"ros__parameters": {"sync": {"slop_s": 0.5}}}})
    p = load_params(Params, "mapper", [f1, f2], {"topic": "/cli"})
    assert (p.topic, p.rate, p.sync.slop_s) == ("/cli", 7, 0.5)  # node beats /**, overrides beat files
    other = load_params(Params, "other", [f1, f2])
    assert (other.topic, other.rate, other.sync.slop_s) == ("/all", 1, 0.02)


def test_dotted_names_and_ros_reserved_params(tmp_path: Path) -> None:
    f = write(tmp_path / "p.yaml", {"n": {"ros__parameters": {"sync.slop_s": 0.1, "use_sim_time": True, "qos_overrides./x.depth": 3}}})
    assert load_params(Params, "n", [f]).sync.slop_s == 0.1


@pytest.mark.parametrize(
    "content, needle",
    [
        ({"n": {"ros__parameters": {"rate": 0}}}, "rate"),
        ({"n": {"ros__parameters": {"sync": {"slop_s": 2.0}}}}, "slop_s"),
        ({"n": {"ros__parameters": {"typo": 1}}}, "typo"),
        ({"n": {"rate": 3}}, "ros__parameters"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_bad_files_are_config_errors(tmp_path: Path, content: object, needle: str) -> None:
    f = write(tmp_path / "bad.yaml", content)
    with pytest.raises(ConfigError, match=needle):
        load_params(Params, "n", [f])


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_param_file(tmp_path / "missing.yaml")
    (tmp_path / "x.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_param_file(tmp_path / "x.yaml")
    (tmp_path / "latin1.yaml").write_bytes("node:\n  ros__parameters:\n    name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_param_file(tmp_path / "latin1.yaml")


def test_describe_lists_flat_names_bounds_and_docs() -> None:
    rows = {r["name"]: r for r in describe(Params)}
    assert set(rows) == {"topic", "rate", "sync.slop_s", "diagnostics_period_s"}  # the last: every node's
    assert rows["sync.slop_s"]["ge"] == 0.0 and rows["sync.slop_s"]["le"] == 1.0
    assert rows["rate"]["gt"] == 0 and rows["topic"]["description"] == "input"
