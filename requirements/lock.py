"""Make and check the lock files that every install of this project uses.

    python requirements/lock.py compile UV [UV-ARGS]  # regenerate the locks (`make lock`)
    python requirements/lock.py check        # fail fast when pyproject changed since

Each lock pins every package, direct and transitive, with hashes, for
CPython 3.11 on Linux x86-64. Its first line records a digest of the inputs
it was made from (pyproject's dependency tables and models.in), so a stale
lock is caught without a resolver or the network. Standard library only: it
runs before the virtual environment exists.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE.parent / "pyproject.toml"
MODELS_IN = HERE / "models.in"
STAMP = "# inputs-sha256: "
TARGET = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]

# name -> extra arguments to `uv pip compile`, in the order they are made:
# xtts first, so that base (a subset) is constrained to the same versions.
LOCKS = {
    "xtts": [str(PYPROJECT), "--extra", "test", "--extra", "xtts"],
    "base": [str(PYPROJECT), "--extra", "test", "--constraint", str(HERE / "xtts.lock")],
    "cuda": [str(PYPROJECT), "--extra", "test", "--extra", "cuda",
             "--constraint", str(HERE / "xtts.lock")],
    "models": [str(MODELS_IN), "--no-deps"],
}


def inputs_digest() -> str:
    """A digest of what the locks are resolved from; comments and layout don't count."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "models": [line.split("#")[0].strip() for line in MODELS_IN.read_text().splitlines()
                   if line.split("#")[0].strip()],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def lock_path(name: str) -> Path:
    return HERE / f"{name}.lock"


def compile_locks(uv: str, uv_args: list[str]) -> None:
    """Re-resolve every lock. Existing pins are kept where they still fit, unless
    uv_args ask for an upgrade (`--upgrade`, `--upgrade-package NAME`)."""
    digest = inputs_digest()
    for name, args in LOCKS.items():
        out = lock_path(name)
        subprocess.run(
            [uv, "pip", "compile", "--quiet", "--generate-hashes", "--no-header",
             *TARGET, *uv_args, *args, "-o", str(out)],
            check=True, cwd=HERE.parent,
        )
        body = out.read_text()
        out.write_text(f"{STAMP}{digest}\n# made by `make lock` from pyproject.toml and "
                       f"requirements/models.in; don't edit by hand\n{body}")
        print(f"wrote {out.relative_to(HERE.parent)}")


def stale_locks() -> list[str]:
    digest = inputs_digest()
    stale = []
    for name in LOCKS:
        path = lock_path(name)
        first = path.read_text().partition("\n")[0] if path.exists() else ""
        if first != STAMP + digest:
            stale.append(str(path.relative_to(HERE.parent)))
    return stale


def main(argv: list[str]) -> int:
    if argv[:1] == ["compile"] and len(argv) >= 2:
        compile_locks(argv[1], argv[2:])
        return 0
    if argv == ["check"]:
        stale = stale_locks()
        if stale:
            print(f"error: {', '.join(stale)} out of date with pyproject.toml or "
                  f"requirements/models.in; run `make lock`", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
