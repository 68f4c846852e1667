"""Static PNG export, where the machine can do it: plotly renders images through kaleido, which
drives a Chrome or Chromium it must find installed. Both are optional (pip install 'salt-budget[png]');
without them the report says so in one line and keeps the HTML, which holds every figure.

kaleido 0.2 (`pip install kaleido==0.2.1`) bundles its own headless Chromium, so it works on a server
with no browser; plotly 6+ no longer calls it, so it is driven directly, with plotly's own plotly.js."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import os
import shutil
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "chrome-headless-shell")


def find_chromium() -> str | None:
    """A Chrome or Chromium executable: $BROWSER_PATH (where kaleido looks first), else one on PATH."""
    configured = os.environ.get("BROWSER_PATH")
    if configured and Path(configured).is_file():
        return configured
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def unavailable() -> str | None:
    """Why PNGs cannot be written here, or None when they can be tried."""
    if importlib.util.find_spec("kaleido") is None:
        return ("PNG figures skipped: kaleido is not installed (pip install 'salt-budget[png]'); "
                "report.html has every figure")
    if _legacy_kaleido():
        return None  # it brings its own Chromium
    if find_chromium() is None:
        return ("PNG figures skipped: kaleido needs Chrome or Chromium and none was found on PATH or in $BROWSER_PATH; "
                "report.html has every figure")
    return None


def _legacy_kaleido() -> bool:
    try:
        return int(importlib.metadata.version("kaleido").split(".")[0]) < 1
    except importlib.metadata.PackageNotFoundError:
        return False


@functools.cache
def _legacy_scope():
    import plotly
    from kaleido.scopes.plotly import PlotlyScope

    return PlotlyScope(plotlyjs=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))


def _quiet_kaleido() -> None:
    # kaleido 1.x and its browser driver log every tab they open at INFO: dozens of lines per report.
    for name in ("kaleido", "choreographer", "logistro"):
        logging.getLogger(name).setLevel(logging.WARNING)


def write_png(figure, path: Path, width: int = 1400) -> None:
    """Raises whatever kaleido raises; the caller turns it into a note, since PNGs are optional."""
    _quiet_kaleido()
    height = figure.layout.height or 500
    if _legacy_kaleido():
        path.write_bytes(_legacy_scope().transform(figure.to_plotly_json(), format="png", width=width, height=height,
                                                   scale=1))
        return
    figure.write_image(str(path), format="png", width=width, height=height, scale=1)
