"""Is PyTorch importable, and if not, the exact command that installs it for the Python QGIS runs.

One place for that text: the Processing algorithms' error (processing_provider/base.py
``require_torch``) and the MineSAR dock's notice say the same thing.

In QGIS desktop ``sys.executable`` is the QGIS binary, not a Python: running it with ``-m pip``
would start another QGIS. The interpreter is found from the prefixes instead.
"""
import os
import re
import shlex
import sys
import sysconfig
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

TORCH_PACKAGES = ("torch", "torchvision")

_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?w?(\.exe)?")


@dataclass(frozen=True)
class PythonInstall:
    """What the install command depends on; ``current()`` describes the running interpreter."""

    executable: str
    exec_prefix: str
    base_prefix: str
    platform: str                # sys.platform
    version: Tuple[int, int]
    externally_managed: bool     # PEP 668 marker (Debian 12): pip needs --user --break-system-packages
    numpy_major: Optional[int]   # the numpy QGIS and GDAL were built against, if any

    @classmethod
    def current(cls) -> "PythonInstall":
        in_venv = sys.prefix != sys.base_prefix  # PEP 668: a virtual environment ignores the marker
        marker = os.path.join(sysconfig.get_path("stdlib") or "", "EXTERNALLY-MANAGED")
        try:
            import numpy

            numpy_major = int(numpy.__version__.split(".")[0])
        except Exception:  # noqa: BLE001 (no numpy, or a broken one: no pin then)
            numpy_major = None
        return cls(sys.executable or "", sys.exec_prefix, sys.base_prefix, sys.platform, sys.version_info[:2],
                   not in_venv and os.path.isfile(marker), numpy_major)


def python_interpreter(install: PythonInstall, isfile: Callable[[str], bool] = os.path.isfile) -> str:
    """The Python of this QGIS as a command: the running executable when it is a Python (console,
    virtual environment), else derived from the prefixes; ``python`` on Windows, meant for the
    OSGeo4W Shell, which puts QGIS's Python first on PATH."""
    if _PYTHON_NAME.fullmatch(os.path.basename(install.executable).lower()) and _inside(
            install.executable, install.exec_prefix):
        return install.executable
    if install.platform.startswith("win"):
        return "python"
    versioned = "python{}.{}".format(*install.version)
    for prefix in dict.fromkeys((install.exec_prefix, install.base_prefix)):
        exact, plain = os.path.join(prefix, "bin", versioned), os.path.join(prefix, "bin", "python3")
        if isfile(exact):
            # python3 reads better, but only when it is this very interpreter (not another minor version).
            same = isfile(plain) and os.path.realpath(plain) == os.path.realpath(exact)
            return plain if same else exact
        if isfile(plain):
            return plain
    return os.path.join(install.exec_prefix, "bin", "python3")


def _inside(path: str, prefix: str) -> bool:
    """Embedded in QGIS or qgis_process, Python guesses sys.executable from PATH (a pyenv shim, another
    Python): trust it only when it lies in this interpreter's own prefix. Not resolved: a venv's python
    is a link out of the venv, and the venv is what counts."""
    return os.path.normcase(os.path.abspath(path)).startswith(os.path.normcase(os.path.join(os.path.abspath(prefix), "")))


def pip_install_command(packages: Sequence[str], install: Optional[PythonInstall] = None,
                        isfile: Callable[[str], bool] = os.path.isfile) -> str:
    install = install or PythonInstall.current()
    arguments = [python_interpreter(install, isfile), "-m", "pip", "install"]
    if install.externally_managed:
        arguments += ["--user", "--break-system-packages"]
    if install.numpy_major == 1:
        # torchvision asks for numpy; keep the 1.x the QGIS and GDAL bindings were compiled against.
        arguments.append("numpy<2")
    arguments += list(packages)
    if install.platform.startswith("win"):
        return " ".join(_cmd_quote(argument) for argument in arguments)
    return shlex.join(arguments)


def _cmd_quote(argument: str) -> str:
    """cmd.exe quoting: its redirections (<, >, |, &) and spaces are literal only inside double quotes."""
    return f'"{argument}"' if re.search(r'[\s<>|&^()"]', argument) else argument


def torch_install_command(install: Optional[PythonInstall] = None,
                          isfile: Callable[[str], bool] = os.path.isfile) -> str:
    return pip_install_command(TORCH_PACKAGES, install, isfile)


def torch_install_advice(install: Optional[PythonInstall] = None,
                         isfile: Callable[[str], bool] = os.path.isfile) -> str:
    """What to do, as the end of a sentence that names what is missing."""
    return install_advice(TORCH_PACKAGES, install, isfile)


def install_advice(packages: Sequence[str], install: Optional[PythonInstall] = None,
                   isfile: Callable[[str], bool] = os.path.isfile) -> str:
    """What to do to get ``packages``, as the end of a sentence that names what is missing."""
    install = install or PythonInstall.current()
    command = pip_install_command(packages, install, isfile)
    if install.platform.startswith("win"):
        where = "in the OSGeo4W Shell installed with QGIS (Start menu, run as administrator)"
    else:
        where = "in a terminal"
    return f"install them for the Python of QGIS {where}: {command} — then restart QGIS."


def torch_import_error() -> Optional[str]:
    """None when torch and torchvision import, else why not."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except Exception as error:  # noqa: BLE001 (an ImportError, or a broken build: a missing DLL, a version clash)
        return str(error) or type(error).__name__
    return None


def keep_triton_out(modules=None) -> bool:
    """Make ``import triton`` fail inside QGIS, unless something imported it already; True if it did.

    torchvision imports torch._dynamo, which imports triton when it is installed (the CUDA wheels
    on Linux bring it). libtriton.so carries its own LLVM; loaded into a QGIS desktop that already
    holds Mesa's libLLVM (llvmpipe, radeonsi) its static initialisers bind to the other LLVM and the
    whole QGIS aborts. MineSAR never compiles kernels, so torch without triton loses nothing: it
    checks for triton with ``import triton`` and falls back when that raises ImportError."""
    modules = sys.modules if modules is None else modules
    if "triton" in modules:
        return False
    modules["triton"] = None  # the import system's marker for "this import fails"
    return True
