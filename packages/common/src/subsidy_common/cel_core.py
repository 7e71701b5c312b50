"""The CEL library's compiled core, loaded without the rest of its package.

`import cel` runs the package's `__init__`, which imports its command-line tool and with it
prompt_toolkit: 0.2-0.3 s of CPU in each service that reads conditions, a fifth of importing the
calculator, for a tool no service runs. The core is the extension module `cel.cel`; loaded from
its own file it is the module `import cel` binds, and a later `import cel` finds it in
`sys.modules` rather than loading it again.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

NAME = "cel.cel"
__all__ = ["core", "load"]


def load() -> ModuleType:
    """The `cel.cel` extension module, loaded once."""
    loaded = sys.modules.get(NAME)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("cel")  # finds the package without running it
    if package is None or not package.submodule_search_locations:
        raise ImportError("common-expression-language is not installed", name=NAME)
    folder = Path(next(iter(package.submodule_search_locations)))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        spec = importlib.util.spec_from_file_location(NAME, folder / f"cel{suffix}")
        if spec is not None and spec.loader is not None and Path(str(spec.origin)).exists():
            module = importlib.util.module_from_spec(spec)
            sys.modules[NAME] = module
            spec.loader.exec_module(module)
            return module
    raise ImportError(f"no compiled CEL core in {folder}", name=NAME)


if TYPE_CHECKING:
    from cel import cel as core
else:
    core = load()
