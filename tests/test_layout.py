"""The package tree shows the architecture: imports flow one way, the README's layout is the tree,
the tests mirror the package, and every command has a console entry point."""

import ast
import configparser
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "espnet_summarymixing"
# Lower layers first: a module may import from its own layer and the layers before it only.
LAYERS = ["frames", "layers", "encoders", "registration", "loading", "publish", "streaming", "longform", "deploy",
          "cli", "commands"]


def entry_points(setup_cfg: Path = ROOT / "setup.cfg"):
    """{console script: (module inside the package, function)} of setup.cfg's console_scripts."""
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    scripts = {}
    for line in config.get("options.entry_points", "console_scripts", fallback="").strip().splitlines():
        name, target = (part.strip() for part in line.split("=", 1))
        module, function = target.split(":")
        scripts[name] = (module.split(".", 1)[1], function)
    return scripts


# the commands: the modules (or folders) at the top that the console entry points run
COMMANDS = {module.split(".")[0] for module, _ in entry_points().values()}


def layer_of(module: str, commands=COMMANDS) -> str:
    """The layer of a module given by its dotted name inside the package ('' for the package)."""
    head = module.split(".")[0]
    if head in ("registration", "_autoload"):
        return "registration"
    if head in commands:
        return "commands"
    return head


def package_imports(path: Path, package: str):
    """(line, imported module inside the package) for every import in a file, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != package else [f"{package}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith(package + "."):
                yield node.lineno, name[len(package) + 1:]


def violations(root: Path, package: str, commands=COMMANDS):
    """Imports that go up a layer, or from one command to another."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        if module == "__init__":
            continue  # the public API: lazy, by name
        own = layer_of(module, commands)
        for line, target in package_imports(path, package):
            other = layer_of(target, commands)
            if LAYERS.index(other) > LAYERS.index(own):
                found.append(f"{path.relative_to(root)}:{line} ({own}) imports {target} ({other})")
            elif own == other == "commands" and target.split(".")[0] != module.split(".")[0]:
                found.append(f"{path.relative_to(root)}:{line}: command imports command {target}")
    return found


def test_imports_flow_one_way():
    assert violations(PACKAGE, "espnet_summarymixing") == []


def test_the_import_check_sees_an_upward_import(tmp_path):
    pkg = tmp_path / "pkg"
    for rel, text in {
        "layers/cell.py": "from pkg.encoders.conformer import X\n",
        "encoders/conformer.py": "def f():\n    from pkg.streaming import encoder\n",
        "streaming/encoder.py": "from pkg.encoders import base\nfrom pkg.layers.cell import Y\n",
        "stream_decode.py": "import pkg.transcribe\n",
        "transcribe.py": "from pkg.loading.audio import load_audio\nfrom pkg.cli.loop import run\n",
        "loading/kinds.py": "from pkg.cli.models import use\n",
        "frames/geometry.py": "from pkg.layers.cell import Y\n",
        "benchmark/speed.py": "from pkg.benchmark.measure import Z\nfrom pkg.export import main\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    found = violations(pkg, "pkg", commands={"stream_decode", "transcribe", "benchmark", "export"})
    assert len(found) == 6, found
    assert any(f.startswith("layers/cell.py:1") for f in found)
    assert any(f.startswith("encoders/conformer.py:2") for f in found)
    assert any("command imports command transcribe" in f for f in found)
    assert any(f.startswith("loading/kinds.py:1 (loading) imports cli.models (cli)") for f in found)
    assert any(f.startswith("frames/geometry.py:1 (frames)") for f in found)
    assert any(f.startswith("benchmark/speed.py:2: command imports command export") for f in found)


def _readme_package_tree():
    """The files and folders the README's layout section lists under espnet_summarymixing/."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    paths, stack, inside = set(), [], False
    for line in block.splitlines():
        if line.startswith("espnet_summarymixing/"):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        if not inside or not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        stack = stack[:depth - 1] + [name.rstrip("/")]
        paths.add("/".join(stack) + ("/" if name.endswith("/") else ""))
    return paths


def _package_tree():
    paths = set()
    for path in PACKAGE.rglob("*"):
        rel = path.relative_to(PACKAGE)
        if "__pycache__" in rel.parts or (path.name == "__init__.py" and len(rel.parts) > 1):
            continue
        if path.is_dir():
            paths.add(rel.as_posix() + "/")
        elif path.suffix == ".py":
            paths.add(rel.as_posix())
    return paths


def test_readme_layout_is_the_package_tree():
    assert _readme_package_tree() == _package_tree()


def test_every_folder_says_what_lives_there_and_has_its_tests():
    for folder in PACKAGE.iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
            assert doc and re.search(r"\w+", doc), f"{folder.name}/__init__.py has no docstring"
            assert list((ROOT / "tests" / folder.name).glob("test_*.py")), f"tests/{folder.name}/ is missing"


def _defines_main(path: Path) -> bool:
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in ast.parse(path.read_text()).body)


def test_every_command_has_a_console_entry_point_and_every_entry_point_a_command():
    """A module at the top of the package with a ``main()`` (or a folder with ``__main__.py``) is a
    command: it has a console entry point ``summarymixing-<command>`` running a ``main`` that exists."""
    scripts = entry_points()
    tops = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "_autoload") and _defines_main(p)}
    tops |= {p.parent.name for p in PACKAGE.glob("*/__main__.py")}
    assert tops == COMMANDS, "commands without an entry point, or entry points without a command"
    for name, (module, function) in scripts.items():
        command = module.split(".")[0]
        assert name == "summarymixing-" + command.replace("_", "-"), name
        path = PACKAGE.joinpath(*module.split(".")).with_suffix(".py")
        assert path.is_file() and function == "main" and _defines_main(path), f"{name}: {module}:{function}"
    assert len(scripts) == len(COMMANDS)
