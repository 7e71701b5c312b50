"""Earlier code against the working tree, loaded alternately in one window.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/alternate.py /tmp/before [--load calculations|claims]
        [--seconds 8] [--pairs 3]

On a shared machine whose speed drifts within minutes, two versions compare only when measured
close together. Each pair starts the system (`harness.system()`) with the earlier checkout's
`scripts/run.py` and its packages first on PYTHONPATH, loads it, then does the same with the
working tree; the figures are requests per second and each process's CPU per request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from claims import SCRIPT, applicant_ids
from harness import CALCULATION, WRK_SCRIPT, system


def _script(load: str, key: str) -> tuple[str, str]:
    """The wrk script and the path it loads."""
    if load == "claims":
        ids = ",".join(f'"{i}"' for i in applicant_ids(500))
        return SCRIPT % {"ids": ids, "key": key}, "/v1/claims"
    body = json.dumps(CALCULATION, ensure_ascii=False)
    return WRK_SCRIPT.format(key=key, body=body), "/v1/calculations"


def measure(load: str, seconds: int, checkout: Path = Path(".")) -> str:
    """One load of the system as the checkout's `make run` and the current PYTHONPATH make it."""
    with system(checkout) as (gateway, key, _, meter):
        text, path = _script(load, key)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(text)
        wrk = ["wrk", "-t2", "-c64", "-s", script.name, f"{gateway}{path}"]
        subprocess.run([*wrk, "-d2s"], capture_output=True, check=True)  # warm-up
        meter.start()
        out = subprocess.run([*wrk, f"-d{seconds}s"], capture_output=True, text=True).stdout
        cpu = meter.stop()
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    spent = ", ".join(
        f"{name} {1000 * s / done:.2f}" for name, s in cpu.items() if name != "registry"
    )
    return f"{rps:,.0f} req/s, {errors.group(1) if errors else 0} non-2xx; CPU ms each: {spent}"


def main() -> None:
    """Alternate the earlier checkout and the working tree, pair by pair."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path, help="a checkout of the earlier commit")
    parser.add_argument("--load", choices=["calculations", "claims"], default="calculations")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    before = os.pathsep.join(
        str(p)
        for p in sorted([*args.before.glob("packages/*/src"), *args.before.glob("services/*/src")])
    )
    for pair in range(1, args.pairs + 1):
        os.environ["PYTHONPATH"] = before
        print(f"pair {pair}, before: {measure(args.load, args.seconds, args.before)}", flush=True)
        os.environ.pop("PYTHONPATH")
        print(f"pair {pair}, after:  {measure(args.load, args.seconds)}", flush=True)


if __name__ == "__main__":
    main()
