"""The attentive probe against V-JEPA 2's classifier (tests/fixtures/vjepa2_probe.py, a reference written from
reading upstream): the same parameters, the same outputs given the same weights, and the project's extras
only where asked for."""

import math

import pytest
import torch

from fixtures.vjepa2_probe import AttentiveClassifier, project_names
from trainers.probe.attentive import build_probe
from trainers.probe.attentive_head import AttentiveProbe
from trainers.probe.config import ProbeConfig

# ViT-L features, the paper's probe (depth 4), SSv2's 174 classes: upstream's count by hand (3 blocks of
# 12,596,224, the query 1,024, the cross-attention block 11,546,624, the Linear 178,350).
VITL_PROBE_PARAMETERS = 49_514_670
EXTRAS = 2 * 1024 + (1024 * 1024 + 1024) + 2 * 1024  # query LayerNorm, output projection, pre-head LayerNorm


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_vitl_probe_has_upstreams_parameter_count():
    with torch.device("meta"):  # no memory: the count is all this test reads
        ours = AttentiveProbe(1024, 174, depth=4, heads=16)
        reference = AttentiveClassifier(1024, 16, 4, 174)
        extras = AttentiveProbe(1024, 174, depth=4, heads=16, query_norm=True, out_proj=True, head_norm=True)
    assert count(reference) == VITL_PROBE_PARAMETERS
    assert count(ours) == VITL_PROBE_PARAMETERS
    assert count(extras) == VITL_PROBE_PARAMETERS + EXTRAS == 50_568_366


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_outputs_equal_upstreams_given_its_weights(depth):
    torch.manual_seed(depth)
    reference = AttentiveClassifier(48, 4, depth, 7)
    for parameter in reference.parameters():  # away from init, so LayerNorm affine terms and biases count too
        torch.nn.init.normal_(parameter, std=0.3)
    ours = AttentiveProbe(48, 7, depth=depth, heads=4)
    state = {project_names(name): value for name, value in reference.state_dict().items()}
    assert set(state) == set(ours.state_dict())  # one to one: no piece of either is left over
    ours.load_state_dict(state)
    features = torch.randn(5, 19, 48)
    torch.testing.assert_close(ours(features), reference(features), atol=1e-5, rtol=1e-5)
    assert {m.eps for m in ours.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-5}


@pytest.mark.parametrize("extra", ["query_norm", "out_proj", "head_norm"])
def test_each_extra_is_an_option_that_changes_the_output(extra):
    torch.manual_seed(0)
    base = AttentiveProbe(32, 5, depth=2, heads=2)
    with_extra = AttentiveProbe(32, 5, depth=2, heads=2, **{extra: True})
    missing = set(with_extra.state_dict()) - set(base.state_dict())
    assert missing  # the extra is a module of its own
    shared = {name: value for name, value in base.state_dict().items()}
    for name in missing:  # give the extra non-identity weights so that it has an effect
        shared[name] = torch.randn_like(with_extra.state_dict()[name])
    with_extra.load_state_dict(shared)
    features = torch.randn(3, 10, 32)
    assert not torch.allclose(with_extra(features), base(features))


def test_the_config_builds_upstreams_probe_by_default_and_the_extras_on_request():
    cfg = ProbeConfig(depth=4, heads=16, position="none")
    with torch.device("meta"):
        assert count(build_probe(1024, 174, cfg, (8, 14, 14))) == VITL_PROBE_PARAMETERS
        cfg.query_norm = cfg.out_proj = cfg.head_norm = True
        assert count(build_probe(1024, 174, cfg, (8, 14, 14))) == VITL_PROBE_PARAMETERS + EXTRAS


def test_init_scales_residual_outputs_as_upstream():
    """Upstream divides block i's residual outputs by sqrt(2(i+1)) and the pooling block's MLP output as the
    last self-attention block's: with depth 4, sqrt(6)."""
    torch.manual_seed(0)
    probe = AttentiveProbe(256, 3, depth=4, heads=4)
    stds = [float(block.mlp.fc2.weight.detach().std()) for block in probe.blocks] + [float(probe.pool.mlp.fc2.weight.detach().std())]
    expected = [0.02 / math.sqrt(2 * i) for i in (1, 2, 3, 3)]
    assert stds == pytest.approx(expected, rel=0.05)
