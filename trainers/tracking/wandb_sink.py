"""Weights & Biases: the run `id` is the unit's key with resume allowed, so every process that trains or probes the
unit continues one run. Mode: $WANDB_MODE where set, else online where an API key is configured, else offline (a
cluster node may have no network; `wandb sync <folder>/wandb/offline-run-*` uploads later, a resumed run's files in
order). Records in <folder>/wandb; project $WANDB_PROJECT or salt-budget; group the sweep, job type the kind."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from trainers.tracking.spec import TrackingSpec

PROJECT = "salt-budget"
STEP = "step"


def api_key_configured() -> bool:
    """$WANDB_API_KEY, or a netrc entry for the W&B host (where `wandb login` saves the key)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _mode() -> str | None:
    if os.environ.get("WANDB_MODE"):
        return None  # wandb reads it
    return "online" if api_key_configured() else "offline"


class WandbSink:
    def __init__(self, spec: TrackingSpec, announce: bool = True) -> None:
        import wandb

        Path(spec.folder).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or PROJECT, group=spec.group, job_type=spec.kind,
            id=spec.run_id, resume="allow", name=spec.name, dir=str(spec.folder), mode=_mode(),
            # W&B tags are labels: the tags' values as key=value labels to filter by, and as config to plot by.
            tags=[f"{key}={value}"[:64] for key, value in spec.tags.items()],
            config={**spec.config, "tags": spec.tags}, allow_val_change=True,
            # create_new: a run of the caller's own (a notebook's) stays open beside this one. Console off: the loop
            # prints its own progress. A process that only adds records (a probe row) says nothing: a sweep opens a
            # unit's run once per probe point.
            reinit="create_new", settings=wandb.Settings(console="off", quiet=announce, silent=not announce),
        )
        # Everything is plotted against the optimiser step, logged as a value: W&B drops a row whose own step
        # (_step) is behind the run's, and a unit's probe rows arrive after its training rows (and, online, a
        # resumed run's _step continues from the server's).
        self.run.define_metric(STEP)
        self.run.define_metric("*", step_metric=STEP)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log({**metrics, STEP: step})

    def add_text(self, name: str, text: str) -> None:
        import html

        import wandb

        self.run.log({name: wandb.Html(f"<pre>{html.escape(text)}</pre>")})

    def add_file(self, path: Path) -> None:
        """HTML as a panel, PNG as an image, anything else in the run's files."""
        import wandb

        path = Path(path)
        if path.suffix.lower() == ".html":
            self.run.log({f"report/{path.stem}": wandb.Html(path.read_text(encoding="utf-8"))})
        elif path.suffix.lower() == ".png":
            self.run.log({f"figures/{path.stem}": wandb.Image(str(path))})
        else:
            self.run.save(str(path), base_path=str(path.parent), policy="now")

    def close(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)
