"""`salt-budget ARGS` for experiments/gpu_check.sh: the CLI run from this checkout, installed or not.

The GPU machines have torch but may not have this project installed, so the checkout's root goes first on
sys.path (and on PYTHONPATH, which a sweep's Ray workers inherit). GPU_CHECK_COMPILE_BACKEND, when set,
is the backend every torch.compile call of the run gets unless it names one: the dry run sets aot_eager,
which traces the step through dynamo and AOT autograd as inductor would (where a graph breaks or a
tensor's kind is refused, it fails the same way) but skips inductor's C++ code generation, minutes on a
CPU. Unset (the GPU check), torch.compile is torch's own, inductor. GPU_CHECK_COMPILE_DYNAMIC=1 compiles
with dynamic=True from the first step: one compile instead of the static one and the recompiles that the
masks' varying token counts bring (training itself compiles without it; a knob for when compiling outruns
the check's budget).

    python experiments/gpu_check_cli.py bench --stage student ...    # = salt-budget bench --stage student ...
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def patch_compile(backend: str, dynamic: bool) -> None:
    """torch.compile with `backend` (if not empty) and dynamic=True (if `dynamic`) unless a call names them."""
    import torch

    compile_ = torch.compile

    def compile_with_defaults(*args, **kwargs):
        if backend:
            kwargs.setdefault("backend", backend)
        if dynamic:
            kwargs.setdefault("dynamic", True)
        return compile_(*args, **kwargs)

    torch.compile = compile_with_defaults


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    paths = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in paths.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), paths]))
    backend = os.environ.get("GPU_CHECK_COMPILE_BACKEND", "").strip()
    dynamic = os.environ.get("GPU_CHECK_COMPILE_DYNAMIC", "") not in ("", "0")
    if backend or dynamic:
        patch_compile(backend, dynamic)
        print(f"gpu-check: torch.compile with backend {backend or 'inductor'}{', dynamic=True' if dynamic else ''}",
              file=sys.stderr)
    from salt_budget.cli import main as salt_budget

    return salt_budget(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
