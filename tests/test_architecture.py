"""The architecture rules (README, "Repository layout"), checked so that they stay true."""
import ast
import configparser
import subprocess
import sys

from conftest import PLUGINS_DIR, ROOT


def test_core_imports_nothing_from_qgis():
    # Import every core module in a Python where "import qgis" fails.
    modules = sorted(
        "minesar." + ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "core").rglob("*.py")
    )
    code = (
        "import sys; sys.modules['qgis'] = None\n"
        f"sys.path.insert(0, {str(PLUGINS_DIR)!r})\n"
        "import importlib\n"
        f"for name in {modules!r}: importlib.import_module(name.replace('.__init__', ''))\n"
        "print(len([m for m in sys.modules if m.startswith('minesar.core')]))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout) >= len(modules) - 1


def test_init_holds_only_class_factory():
    tree = ast.parse((ROOT / "__init__.py").read_text())
    definitions = [node for node in tree.body if not isinstance(node, ast.Expr)]
    assert [type(node).__name__ for node in definitions] == ["FunctionDef"]
    assert definitions[0].name == "classFactory"


def test_metadata_has_what_the_plugin_repository_needs():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                "repository", "tracker", "homepage", "tags", "category", "icon", "changelog"):
        assert general.get(key, "").strip(), key
    assert general["name"] == "MineSAR"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert (ROOT / general["icon"]).is_file()
    assert (ROOT / "LICENSE").is_file()


def test_no_generated_files_are_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:  # not a git checkout (an unpacked zip): nothing to check
        return
    assert not [f for f in tracked if f.endswith(("resources_rc.py", ".pyc")) or "/ui_" in f]
