"""ROS 2 YAML launch files, read without ROS: one description of the graph for `ros2 launch` and
`ros-gs replay --launch`.

Why our own reader: ROS's (``launch`` + ``launch_yaml`` + ``launch_ros``) is on no registry we
reach and needs rclpy.  This one reads the subset of the format our launch files use, and is strict
the way ``launch_yaml`` is: a tag or attribute ROS 2 does not accept is an error (``launch_yaml``'s
``assert_entity_completely_parsed``), and so is one that ROS accepts but a replay cannot honour
(``ros_args``, ``include`` of a Python file, ``$(eval)``).  Attributes that only concern a process
(``output``, ``respawn``, ``launch-prefix``...) are accepted and have no effect in a replay.

Supported, with ROS's meaning:

* tags ``arg`` (name, default, description, choice), ``let``, ``node`` (pkg, exec, name,
  namespace, param, remap), ``group`` (scoped, forwarding, children), ``push_ros_namespace`` (or
  ``push-ros-namespace``), ``include`` (YAML launch files, with ``arg``); ``if`` / ``unless`` on
  every one (``true``/``1``, ``false``/``0``, any case);
* ``param``: ``from`` (a parameter file), ``name`` + ``value``, or ``name`` + nested ``param``;
  applied in order, a later one overriding an earlier one;
* substitutions ``$(var N)``, ``$(env N [DEFAULT])``, ``$(find-pkg-share PKG)``, ``$(dirname)``,
  ``$(filename)``, ``$(not X)``, ``$(and X Y...)``, ``$(or X Y...)``, ``$(equals A B)``,
  ``$(not-equals A B)``, nested.

The attribute tables below are those of the ``parse`` methods of launch (2024) and launch_ros.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ros_gs.errors import ConfigError

PACKAGE = "ros_gs"

_CONDITIONS = {"if", "unless"}
#: every attribute ROS 2's YAML launch accepts per tag (launch / launch_ros ``parse`` methods)
ROS_ATTRIBUTES: dict[str, set[str]] = {
    "arg": {"name", "default", "description", "choice"} | _CONDITIONS,
    "let": {"name", "value"} | _CONDITIONS,
    "group": {"scoped", "forwarding", "keep", "children"} | _CONDITIONS,
    "push_ros_namespace": {"namespace"} | _CONDITIONS,
    "push-ros-namespace": {"namespace"} | _CONDITIONS,
    "include": {"file", "arg"} | _CONDITIONS,
    "node": {"pkg", "exec", "name", "namespace", "param", "remap", "args", "ros_args", "exec_name", "node-name",
             "cwd", "env", "output", "respawn", "respawn_max_retries", "respawn_delay", "launch-prefix",
             "sigterm_timeout", "sigkill_timeout", "shell", "emulate_tty", "on_exit"} | _CONDITIONS,
}
#: attributes ROS accepts whose effect a replay cannot give: refused rather than silently dropped
UNSUPPORTED = {
    "group": {"keep"},
    "node": {"args", "ros_args", "exec_name", "node-name", "on_exit"},
}
#: attributes of a process only (how it is started and its output shown): no effect in a replay
PROCESS_ONLY = {"cwd", "env", "output", "respawn", "respawn_max_retries", "respawn_delay", "launch-prefix",
                "sigterm_timeout", "sigkill_timeout", "shell", "emulate_tty"}
_TRUE, _FALSE = ("true", "1"), ("false", "0")


class LaunchError(ConfigError):
    """A launch file that ROS 2 would refuse, or that a replay cannot run as ROS would."""


@dataclass
class LaunchArgument:
    name: str
    default: str | None
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass
class LaunchNode:
    """One node of the graph: ``executable`` of package ``ros_gs`` named ``name`` in
    ``namespace``; ``params`` are parameter files (Path) and inline values (dict), in order;
    ``remaps`` are (from, to) names as written (resolved by the node's context)."""

    executable: str
    name: str
    namespace: str = "/"
    params: list[Path | dict[str, Any]] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""  # file and position, for messages


@dataclass
class LaunchDescription:
    nodes: list[LaunchNode]
    arguments: dict[str, LaunchArgument]  # declared by the top file, then by the files it includes


def package_share(package: str) -> Path:
    """``$(find-pkg-share package)``: our source tree (a checkout or an editable install), else an
    ament install (under ROS 2), else the ``share/`` that ``pip install`` fills from setup.py."""
    if package == PACKAGE:
        source = Path(__file__).resolve().parents[2]
        if (source / "package.xml").is_file() and (source / "launch").is_dir():
            return source
    try:  # under ROS 2
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return Path(get_package_share_directory(package))
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    if package == PACKAGE and (Path(sys.prefix) / "share" / PACKAGE).is_dir():
        return Path(sys.prefix) / "share" / PACKAGE
    raise LaunchError(f"$(find-pkg-share {package}): package {package!r} not found")


class _Reader:
    """Walks one launch file; ``config`` holds the launch configurations (args and lets)."""

    def __init__(self, path: Path, config: dict[str, str], namespace: str, nodes: list[LaunchNode],
                 declared: dict[str, LaunchArgument], depth: int = 0, share: Mapping[str, Path] | None = None) -> None:
        self.path, self.config, self.namespace, self.nodes, self.declared, self.depth = path, config, namespace, nodes, declared, depth
        self.share = dict(share or {})  # package -> share folder, before package_share()

    # -- substitutions ------------------------------------------------------------------------
    def subst(self, value: Any, where: str) -> str:
        if isinstance(value, bool):  # YAML's true is ROS's "true"
            return str(value).lower()
        if not isinstance(value, str):
            return str(value)
        out, i = [], 0
        while i < len(value):
            start = value.find("$(", i)
            if start < 0:
                out.append(value[i:])
                break
            out.append(value[i:start])
            end, level = start + 2, 1
            while end < len(value) and level:
                level += {"(": 1, ")": -1}.get(value[end], 0)
                end += 1
            if level:
                raise LaunchError(f"{where}: unclosed substitution in {value!r}")
            out.append(self._one(value[start + 2:end - 1], where))
            i = end
        return "".join(out)

    def _words(self, inner: str) -> list[str]:
        """Split on spaces outside nested ``$(...)`` and quotes."""
        words, cur, level, quote, quoted = [], "", 0, "", False
        for ch in inner:
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    cur += ch
                continue
            if ch in "'\"" and level == 0:
                quote, quoted = ch, True  # '' is an empty word
                continue
            if ch == "(" and cur.endswith("$"):
                level += 1
            elif ch == ")" and level:
                level -= 1
            if ch.isspace() and level == 0:
                if cur or quoted:
                    words.append(cur)
                cur, quoted = "", False
                continue
            cur += ch
        if quote:
            raise LaunchError(f"unclosed quote in $({inner})")
        if cur or quoted:
            words.append(cur)
        return words

    def _one(self, inner: str, where: str) -> str:
        words = self._words(inner)
        if not words:
            raise LaunchError(f"{where}: empty substitution $()")
        kind, args = words[0], [self.subst(w, where) for w in words[1:]]

        def need(lo: int, hi: int) -> None:
            if not (lo <= len(args) <= hi):
                raise LaunchError(f"{where}: $({kind}) takes {lo}{'' if lo == hi else f'-{hi}'} argument(s), got {len(args)}")

        if kind == "var":
            need(1, 1)
            if args[0] not in self.config:
                raise LaunchError(f"{where}: launch configuration {args[0]!r} is not set "
                                  f"(known: {', '.join(sorted(self.config)) or 'none'})")
            return self.config[args[0]]
        if kind == "env":
            need(1, 2)
            if args[0] in os.environ:
                return os.environ[args[0]]
            if len(args) == 2:
                return args[1]
            raise LaunchError(f"{where}: environment variable {args[0]!r} is not set")
        if kind == "find-pkg-share":
            need(1, 1)
            return str(self.share.get(args[0]) or package_share(args[0]))
        if kind == "dirname":
            need(0, 0)
            return str(self.path.parent)
        if kind == "filename":
            need(0, 0)
            return str(self.path)
        if kind == "not":
            need(1, 1)
            return str(not self.truth(args[0], where)).lower()
        if kind in ("and", "or"):
            need(2, 99)
            values = [self.truth(a, where) for a in args]
            return str(all(values) if kind == "and" else any(values)).lower()
        if kind in ("equals", "not-equals"):
            need(2, 2)
            return str((args[0] == args[1]) == (kind == "equals")).lower()
        raise LaunchError(f"{where}: substitution $({kind} ...) is not supported by ros-gs replay "
                          "(supported: var, env, find-pkg-share, dirname, filename, not, and, or, equals, not-equals)")

    @staticmethod
    def truth(text: str, where: str) -> bool:
        t = str(text).strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise LaunchError(f"{where}: condition {text!r} is neither true/1 nor false/0")

    # -- entities -----------------------------------------------------------------------------
    def entities(self, items: Any, where: str) -> None:
        if not isinstance(items, list):
            raise LaunchError(f"{where}: expected a list of entities, got {type(items).__name__}")
        for k, item in enumerate(items):
            if not isinstance(item, dict) or len(item) != 1:
                raise LaunchError(f"{where}[{k}]: each entity is a mapping with one key (its tag), got {item!r}")
            (tag, body), = item.items()
            self.entity(str(tag), body if body is not None else {}, f"{where}[{k}] {tag}")

    def _attrs(self, tag: str, body: Any, where: str) -> dict[str, Any]:
        if tag not in ROS_ATTRIBUTES:
            raise LaunchError(f"{where}: tag {tag!r} is not supported by ros-gs replay "
                              f"(supported: {', '.join(sorted(ROS_ATTRIBUTES))})")
        if tag == "group" and isinstance(body, list):
            body = {"children": body}
        if not isinstance(body, dict):
            raise LaunchError(f"{where}: expected a mapping of attributes, got {type(body).__name__}")
        if unknown := sorted(set(body) - ROS_ATTRIBUTES[tag]):
            raise LaunchError(f"{where}: {unknown} are not attributes of {tag!r} in ROS 2 launch "
                              f"(it accepts {sorted(ROS_ATTRIBUTES[tag])})")
        if refused := sorted(set(body) & UNSUPPORTED.get(tag, set())):
            raise LaunchError(f"{where}: {refused} of {tag!r} cannot be honoured by ros-gs replay")
        return body

    def _enabled(self, body: dict[str, Any], where: str) -> bool:
        if "if" in body and not self.truth(self.subst(body["if"], where), where):
            return False
        if "unless" in body and self.truth(self.subst(body["unless"], where), where):
            return False
        return True

    def entity(self, tag: str, body: Any, where: str) -> None:
        body = self._attrs(tag, body, where)
        if not self._enabled(body, where):
            return
        if tag == "arg":
            self.arg(body, where)
        elif tag == "let":
            self._need(body, ("name", "value"), where)
            self.config[self.subst(body["name"], where)] = self.subst(body["value"], where)
        elif tag in ("push_ros_namespace", "push-ros-namespace"):
            self._need(body, ("namespace",), where)
            self.namespace = join_namespace(self.namespace, self.subst(body["namespace"], where))
        elif tag == "group":
            self.group(body, where)
        elif tag == "include":
            self.include(body, where)
        else:
            self.node(body, where)

    @staticmethod
    def _need(body: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
        if missing := [k for k in keys if k not in body]:
            raise LaunchError(f"{where}: missing {missing}")

    def arg(self, body: dict[str, Any], where: str) -> None:
        self._need(body, ("name",), where)
        name = str(body["name"])
        choices = tuple(str(self.subst(c.get("value"), where)) for c in body.get("choice") or [] if isinstance(c, dict))
        default = None if body.get("default") is None else self.subst(body["default"], where)
        if name not in self.config:
            if default is None:
                raise LaunchError(f"{self.path}: required launch argument {name!r} was not given (--arg {name}:=VALUE)")
            self.config[name] = default
        if choices and self.config[name] not in choices:
            raise LaunchError(f"{self.path}: launch argument {name}:={self.config[name]!r} is not one of {list(choices)}")
        if self.depth == 0:
            self.declared[name] = LaunchArgument(name, default, str(body.get("description", "")), choices)
        else:  # an included file's: ros2 launch passes NAME:=VALUE on to it
            self.declared.setdefault(name, LaunchArgument(name, default, str(body.get("description", "")), choices))

    def group(self, body: dict[str, Any], where: str) -> None:
        scoped = body.get("scoped", True)
        forwarding = body.get("forwarding", True)
        if not isinstance(scoped, bool) or not isinstance(forwarding, bool):
            raise LaunchError(f"{where}: scoped and forwarding must be true or false")
        if "children" not in body:
            raise LaunchError(f"{where}: a group needs 'children'")
        config = (dict(self.config) if forwarding else {}) if scoped else self.config
        inner = _Reader(self.path, config, self.namespace, self.nodes, self.declared, self.depth, self.share)
        inner.entities(body["children"], where)
        if not scoped:
            self.namespace = inner.namespace

    def include(self, body: dict[str, Any], where: str) -> None:
        self._need(body, ("file",), where)
        path = Path(self.subst(body["file"], where))
        if not path.is_absolute():
            path = self.path.parent / path
        if not path.name.endswith((".yaml", ".yml")):
            raise LaunchError(f"{where}: only YAML launch files can be included by ros-gs replay, not {path.name}")
        if self.depth >= 16:
            raise LaunchError(f"{where}: includes nested more than 16 deep (a cycle?)")
        config = dict(self.config)  # an include is scoped, forwarding the current configuration
        for k, a in enumerate(body.get("arg") or []):
            if not isinstance(a, dict) or set(a) - {"name", "value"} or "name" not in a or "value" not in a:
                raise LaunchError(f"{where}: arg[{k}] needs exactly 'name' and 'value'")
            config[str(self.subst(a["name"], where))] = self.subst(a["value"], where)
        _read(path, config, self.namespace, self.nodes, self.declared, self.depth + 1, self.share)

    def node(self, body: dict[str, Any], where: str) -> None:
        self._need(body, ("exec",), where)
        pkg = self.subst(body.get("pkg", ""), where)
        if pkg != PACKAGE:
            raise LaunchError(f"{where}: ros-gs replay runs the nodes of package {PACKAGE!r}, not {pkg!r}")
        exe = self.subst(body["exec"], where)
        name = self.subst(body.get("name", exe), where)
        ns = join_namespace(self.namespace, self.subst(body.get("namespace", ""), where))
        params: list[Path | dict[str, Any]] = []
        for k, p in enumerate(body.get("param") or []):
            params.append(self.param(p, f"{where} param[{k}]"))
        remaps = []
        for k, r in enumerate(body.get("remap") or []):
            if not isinstance(r, dict) or set(r) != {"from", "to"}:
                raise LaunchError(f"{where} remap[{k}]: needs exactly 'from' and 'to', got {r!r}")
            src, dst = self.subst(r["from"], where), self.subst(r["to"], where)
            if src.startswith("__") or not src or not dst:
                raise LaunchError(f"{where} remap[{k}]: {src!r} -> {dst!r} cannot be remapped by ros-gs replay")
            remaps.append((src, dst))
        self.nodes.append(LaunchNode(exe, name, ns, params, remaps, f"{self.path}: {where}"))

    def param(self, p: Any, where: str) -> Path | dict[str, Any]:
        if not isinstance(p, dict):
            raise LaunchError(f"{where}: expected a mapping, got {p!r}")
        if "from" in p:
            if set(p) - {"from", "allow_substs"}:
                raise LaunchError(f"{where}: 'from' takes no other attribute, got {sorted(p)}")
            if p.get("allow_substs"):
                raise LaunchError(f"{where}: allow_substs is not supported by ros-gs replay")
            path = Path(self.subst(p["from"], where))
            if not path.is_file():
                raise LaunchError(f"{where}: parameter file {path} not found")
            return path
        if set(p) - {"name", "value", "param", "type"} or "name" not in p:
            raise LaunchError(f"{where}: a param has 'from', or 'name' with 'value' or nested 'param', got {sorted(p)}")
        if "type" in p:
            raise LaunchError(f"{where}: a param's 'type' is not supported by ros-gs replay (YAML values carry their type)")
        name = str(self.subst(p["name"], where))
        if ("value" in p) == ("param" in p):
            raise LaunchError(f"{where}: param {name!r} needs either 'value' or nested 'param'")
        if "param" in p:
            nested: dict[str, Any] = {}
            for k, q in enumerate(p["param"] or []):
                nested.update(self.param(q, f"{where} {name}[{k}]"))  # type: ignore[arg-type]
            return {name: nested}
        return {name: self.value(p["value"], where)}

    def value(self, v: Any, where: str) -> Any:
        """A parameter value: YAML's own type; a string with substitutions is typed after them
        as ROS does (``5`` an integer, ``true`` a bool, ``[1, 2]`` a list)."""
        if isinstance(v, list):
            return [self.value(x, where) for x in v]
        if isinstance(v, str) and "$(" in v:
            text = self.subst(v, where)
            try:
                return yaml.safe_load(text) if text.strip() else text
            except yaml.YAMLError:
                return text
        return v


def join_namespace(outer: str, inner: str) -> str:
    """A namespace ``inner`` inside ``outer``: an absolute one replaces it."""
    inner = inner.strip()
    if inner.startswith("/"):
        parts = [inner]
    else:
        parts = [outer, inner]
    joined = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return "/" + joined


def _read(path: Path, config: dict[str, str], namespace: str, nodes: list[LaunchNode],
          declared: dict[str, LaunchArgument], depth: int, share: Mapping[str, Path] | None = None) -> None:
    try:
        tree = yaml.safe_load(path.read_text())
    except OSError as err:
        raise LaunchError(f"launch file {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise LaunchError(f"launch file {path}: not YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(tree, dict) or list(tree) != ["launch"]:
        raise LaunchError(f"launch file {path}: the root must be one 'launch:' key")
    _Reader(path, config, namespace, nodes, declared, depth, share).entities(tree["launch"] or [], "launch")


def load_launch(path: Path | str, arguments: Mapping[str, str] | None = None,
                share: Mapping[str, Path] | None = None) -> LaunchDescription:
    """Read a YAML launch file with launch arguments ``NAME -> VALUE`` (``ros2 launch`` names
    them ``NAME:=VALUE``); every argument given must be declared by the file.  ``share`` maps
    packages to the folders ``$(find-pkg-share)`` gives (default: :func:`package_share`)."""
    path = Path(path).absolute()
    config = {str(k): str(v) for k, v in (arguments or {}).items()}
    nodes: list[LaunchNode] = []
    declared: dict[str, LaunchArgument] = {}
    _read(path, dict(config), "/", nodes, declared, 0, share)
    if unknown := sorted(set(config) - set(declared)):
        raise LaunchError(f"{path}: launch argument(s) {unknown} are not declared "
                          f"(it takes: {', '.join(declared) or 'none'})")
    names = [(n.namespace, n.name) for n in nodes]
    if dup := sorted({f"{ns.rstrip('/')}/{nm}" for ns, nm in names if names.count((ns, nm)) > 1}):
        raise LaunchError(f"{path}: node(s) {dup} are launched twice")
    return LaunchDescription(nodes, declared)


def parse_arguments(items: list[str]) -> dict[str, str]:
    """``NAME:=VALUE`` strings (as ``ros2 launch`` takes them) -> mapping."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name.strip():
            raise LaunchError(f"launch argument {item!r} must be NAME:=VALUE")
        out[name.strip()] = value
    return out
