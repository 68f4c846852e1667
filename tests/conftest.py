import pytest

from trainers.data.config import SyntheticConfig
from trainers.data.synthetic import generate_synthetic

SMALL = dict(train=12, val=6, frames=16, size=32, seed=3)


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    """A small embedded data set on disk (MP4 + lists), shared by the pipeline tests."""
    cfg = SyntheticConfig(**SMALL)
    folder = tmp_path_factory.mktemp("synth") / "set"
    generate_synthetic(cfg, folder, workers=1, progress=False)
    return cfg, folder
