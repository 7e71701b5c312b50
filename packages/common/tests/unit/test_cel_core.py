"""The CEL core loads without the library's command-line tool, and is the module `cel` binds."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from subsidy_common.cel_core import core
assert core.compile("event.a + 1 == 2").execute({"event": {"a": 1}}) is True
assert "cel" not in sys.modules and "prompt_toolkit" not in sys.modules
import cel
assert cel.compile is core.compile
"""


def test_the_core_alone_and_then_the_package() -> None:
    subprocess.run([sys.executable, "-c", CHECK], check=True)
