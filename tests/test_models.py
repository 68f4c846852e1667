"""Behaviour of the ViT, 3D RoPE, predictor, pixel decoder helpers and attentive probe."""

import math

import pytest
import torch
from torch import nn

from trainers.models import (
    Predictor,
    ViTSpec,
    VisionTransformer,
    encoder_spec,
    patchify,
    pixel_decoder,
    unpatchify,
)
from trainers.models.presets import ENCODER_PRESETS
from trainers.models.position import sincos_position_code
from trainers.probe.attentive_head import AttentiveProbe
from trainers.models.rope import apply_rope, grid_positions, rope_segment, rope_tables

FRAMES, RES = 4, 32  # nano (patch 8, tubelet 2) -> grid (2, 4, 4), 32 tokens


@pytest.fixture(scope="module")
def nano() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(encoder_spec("nano"), FRAMES, RES).eval()


def clips(b: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, FRAMES, RES, RES, generator=torch.Generator().manual_seed(seed))


# ---- presets -------------------------------------------------------------------------------


def test_presets_match_the_paper_and_cpu_sizes():
    assert ENCODER_PRESETS["vit_large"] == ViTSpec(1024, 24, 16, 4096, 16, 2)
    assert ENCODER_PRESETS["vit_gigantic"] == ViTSpec(1664, 48, 16, 8192, 16, 2)
    for name in ("nano", "micro", "tiny", "small"):
        spec = ENCODER_PRESETS[name]
        assert (spec.patch_size, spec.tubelet_size, spec.head_dim, spec.mlp_hidden) == (8, 2, 32, 4 * spec.width)
    assert encoder_spec("vit_base", patch_size=8, tubelet_size=1) == ViTSpec(768, 12, 12, 3072, 8, 1)


def test_unknown_preset_names_the_closest():
    with pytest.raises(ValueError, match=r"did you mean 'vit_large'.*known: vit_base"):
        encoder_spec("vit_larg")


# ---- encoder -------------------------------------------------------------------------------


def test_encoder_shapes_full_and_kept(nano):
    x = clips()
    assert nano.grid == (2, 4, 4) and nano.num_tokens == 32 and nano.width == 64
    assert nano(x).shape == (2, 32, 64)
    keep = torch.stack([torch.randperm(32)[:9] for _ in range(2)])
    assert nano(x, keep).shape == (2, 9, 64)


def test_activation_checkpointing_gives_the_same_gradients(nano):
    clips = torch.randn(2, 3, nano.frames, nano.resolution, nano.resolution)
    keep = torch.tensor([[0, 3, 5, 9], [1, 2, 8, 30]])

    saved = {}

    def gradients(recompute: bool) -> list[torch.Tensor]:
        nano.zero_grad(set_to_none=True)
        nano.activation_checkpointing = recompute
        count = [0]

        def pack(tensor):
            count[0] += 1
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = nano(clips, keep).square().mean()
        saved[recompute] = count[0]
        loss.backward()
        return [p.grad.clone() for p in nano.parameters()]

    plain, recomputed = gradients(False), gradients(True)
    nano.activation_checkpointing = False
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, recomputed))
    assert saved[True] < saved[False] / 3  # the blocks' activations were not kept


def test_wrong_clip_shape_is_a_clear_error(nano):
    with pytest.raises(ValueError, match=r"expected \(B, 3, 4, 32, 32\)"):
        nano(torch.zeros(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="do not tile"):
        VisionTransformer(encoder_spec("nano"), 5, 32)


def test_keep_is_permutation_equivariant(nano):
    # Keeping every token in a shuffled order must shuffle the outputs the same way: the RoPE
    # angles travel with the gathered tokens, so position comes from the index, not the slot.
    x = clips()
    perm = torch.stack([torch.randperm(32, generator=torch.Generator().manual_seed(s)) for s in (3, 4)])
    with torch.no_grad():
        full, shuffled = nano(x), nano(x, perm)
    expected = torch.gather(full, 1, perm[..., None].expand(-1, -1, 64))
    torch.testing.assert_close(shuffled, expected, atol=1e-5, rtol=1e-5)
    # ... and positions matter: the same tokens without their angles give something else.
    assert not torch.allclose(nano(x, perm)[0, 0], full[0, 0], atol=1e-3)


def test_padded_tokens_do_not_change_valid_outputs(nano):
    x = clips(1)
    real = torch.tensor([[0, 5, 9, 17, 30]])
    with torch.no_grad():
        alone = nano(x, real)
        outs = []
        for pad in ([1, 2, 3], [31, 20, 7]):
            keep = torch.cat([real, torch.tensor([pad])], dim=1)
            valid = torch.tensor([[True] * 5 + [False] * 3])
            outs.append(nano(x, keep, valid)[:, :5])
            unmasked = nano(x, keep)[:, :5]
    for out in outs:
        torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unmasked, alone, atol=1e-4)  # the mask is what made them equal


def test_init_follows_vjepa():
    torch.manual_seed(0)
    model = VisionTransformer(encoder_spec("tiny"), FRAMES, RES)
    # V-JEPA cuts at +-2 absolute: at std 0.02 that is no cut, the std stays 0.02 and values pass 2 std.
    cut = 1.0
    qkv = model.blocks[0].attn.qkv
    assert qkv.weight.std().item() == pytest.approx(0.02 * cut, rel=0.03)
    assert qkv.weight.abs().max().item() > 0.04
    assert qkv.bias.abs().max().item() == 0
    assert model.patch_embed.weight.std().item() == pytest.approx(0.02 * cut, rel=0.03)
    for i, block in enumerate(model.blocks):
        scale = 1 / math.sqrt(2 * (i + 1))
        fc1, fc2 = block.mlp.fc1.weight.std().item(), block.mlp.fc2.weight.std().item()
        assert fc2 / fc1 == pytest.approx(scale, rel=0.03)
        assert block.attn.proj.weight.std().item() / fc1 == pytest.approx(scale, rel=0.05)
        assert torch.equal(block.norm1.weight, torch.ones(128)) and block.norm1.bias.abs().max() == 0
    assert model.norm.eps == 1e-6


# ---- RoPE ----------------------------------------------------------------------------------


@pytest.mark.parametrize("head_dim, seg", [(64, 20), (32, 10), (24, 8)])
def test_rope_segments_and_unrotated_tail(head_dim, seg):
    assert rope_segment(head_dim) == seg
    cos, sin = rope_tables((3, 4, 5), head_dim)
    assert cos.shape == sin.shape == (60, head_dim) and cos.dtype == torch.float32
    rotated = (sin != 0).any(dim=0)
    assert rotated[: 3 * seg].all() and not rotated[3 * seg :].any()
    assert (cos[:, 3 * seg :] == 1).all()
    x = torch.randn(1, 2, 60, head_dim)
    out = apply_rope(x, cos[None, None], sin[None, None])
    torch.testing.assert_close(out[..., 3 * seg :], x[..., 3 * seg :], rtol=0, atol=0)
    assert not torch.allclose(out[..., : 3 * seg], x[..., : 3 * seg])


def test_rope_layout_time_height_width_and_consecutive_pairs():
    grid, head_dim = (3, 4, 5), 32
    cos, sin = rope_tables(grid, head_dim)
    pos = grid_positions(grid)
    index = lambda t, h, w: t * 20 + h * 5 + w  # noqa: E731
    assert pos[index(2, 3, 1)].tolist() == [2, 3, 1]
    # The first pair of each segment turns at frequency 1, i.e. by the coordinate itself.
    angle = torch.atan2(sin, cos)
    for t, h, w in [(2, 3, 1), (1, 0, 2)]:
        i = index(t, h, w)
        assert angle[i, [0, 1, 10, 11, 20, 21]].tolist() == pytest.approx([t, t, h, h, w, w], abs=1e-6)
    # Consecutive pairs: the unit vector e0 turns within dims (0, 1), not into dim seg/2.
    e0 = torch.zeros(1, 1, 1, head_dim)
    e0[..., 0] = 1
    i = index(1, 0, 0)
    out = apply_rope(e0, cos[None, None, i : i + 1], sin[None, None, i : i + 1])[0, 0, 0]
    assert out[:2].tolist() == pytest.approx([math.cos(1), math.sin(1)], abs=1e-6)
    assert out[2:].abs().max() < 1e-7


def test_rope_scores_depend_only_on_relative_offset():
    grid, head_dim = (4, 5, 6), 32
    cos, sin = rope_tables(grid, head_dim)
    index = lambda t, h, w: t * 30 + h * 6 + w  # noqa: E731
    q, k = torch.randn(2, head_dim, generator=torch.Generator().manual_seed(0))

    def score(p_q, p_k):
        idx = torch.tensor([[index(*p_q), index(*p_k)]])
        c, s = cos[idx].unsqueeze(1), sin[idx].unsqueeze(1)
        rq = apply_rope(q.view(1, 1, 1, -1).expand(1, 1, 2, -1), c, s)[0, 0, 0]
        rk = apply_rope(k.view(1, 1, 1, -1).expand(1, 1, 2, -1), c, s)[0, 0, 1]
        return torch.dot(rq, rk).item()

    same_a = score((0, 1, 2), (1, 3, 5))
    same_b = score((2, 0, 0), (3, 2, 3))  # the same (1, 2, 3) offset elsewhere in the grid
    assert same_a == pytest.approx(same_b, abs=1e-5)
    for other in [(1, 3, 4), (0, 3, 5), (1, 2, 5)]:  # one axis off by one
        assert abs(score((0, 1, 2), other) - same_a) > 1e-3


# ---- predictor -----------------------------------------------------------------------------


def test_predictor_shape_and_gradient_reaches_context():
    torch.manual_seed(0)
    grid = (2, 4, 4)
    pred = Predictor(64, 48, grid, width=48, depth=2, heads=2)
    context = torch.randn(2, 10, 64, requires_grad=True)
    ctx_idx = torch.stack([torch.randperm(32)[:10] for _ in range(2)])
    tgt_idx = torch.stack([torch.randperm(32)[:7] for _ in range(2)])
    out = pred(context, ctx_idx, tgt_idx)
    assert out.shape == (2, 7, 48)
    out.abs().mean().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0
    assert pred.mask_token.grad.abs().sum() > 0


def test_predictor_uses_original_positions_not_sequence_order():
    torch.manual_seed(0)
    pred = Predictor(32, 16, (2, 4, 4), width=32, depth=2, heads=1).eval()
    with torch.no_grad():  # at init attention is almost uniform; sharpen it so positions show
        for block in pred.blocks:
            block.attn.qkv.weight.mul_(20)
    context = torch.randn(1, 6, 32)
    ctx_idx = torch.tensor([[0, 3, 8, 12, 20, 31]])
    tgt_idx = torch.tensor([[1, 2, 16, 25]])
    with torch.no_grad():
        out = pred(context, ctx_idx, tgt_idx)
        perm = torch.tensor([5, 2, 0, 4, 1, 3])
        reordered = pred(context[:, perm], ctx_idx[:, perm], tgt_idx)
        moved = pred(context, ctx_idx, torch.tensor([[1, 2, 16, 26]]))
    torch.testing.assert_close(reordered, out, atol=1e-5, rtol=1e-5)
    # Identical mask tokens at different positions get different predictions.
    assert not torch.allclose(out[0, 0], out[0, 1], atol=1e-4)
    assert not torch.allclose(moved[0, 3], out[0, 3], atol=1e-4)


def test_a_position_code_tells_mask_tokens_apart_from_the_first_step():
    """At init, with RoPE alone, the mask tokens' predictions barely differ by position (attention is almost
    uniform); the sin-cos code on the head's input makes them differ at once, and still follows each token's
    grid index, not its place in the sequence."""
    context = torch.randn(1, 6, 32, generator=torch.Generator().manual_seed(1))
    ctx_idx = torch.tensor([[0, 3, 8, 12, 20, 31]])
    tgt_idx = torch.tensor([[1, 2, 16, 25]])
    spread = {}
    for position in ("rope", "sincos"):
        torch.manual_seed(0)
        pred = Predictor(32, 16, (2, 4, 4), width=32, depth=2, heads=1, position=position).eval()
        with torch.no_grad():
            out = pred(context, ctx_idx, tgt_idx)[0]
            perm = torch.tensor([3, 1, 0, 2])
            torch.testing.assert_close(pred(context, ctx_idx, tgt_idx[:, perm])[0], out[perm], atol=1e-5, rtol=1e-5)
        spread[position] = float((out - out.mean(0)).norm() / out.norm())
    assert spread["rope"] < 0.05 and spread["sincos"] > 5 * spread["rope"]


def test_predictor_padding_is_ignored():
    torch.manual_seed(0)
    pred = Predictor(32, 16, (2, 4, 4), width=32, depth=2, heads=2).eval()
    context, ctx_idx, tgt_idx = torch.randn(1, 4, 32), torch.tensor([[0, 5, 9, 30]]), torch.tensor([[1, 2]])
    with torch.no_grad():
        alone = pred(context, ctx_idx, tgt_idx)
        padded = pred(
            torch.cat([context, torch.randn(1, 2, 32)], 1),
            torch.cat([ctx_idx, torch.tensor([[7, 8]])], 1),
            torch.tensor([[1, 2, 3]]),
            context_valid=torch.tensor([[True] * 4 + [False] * 2]),
            target_valid=torch.tensor([[True, True, False]]),
        )
    torch.testing.assert_close(padded[:, :2], alone, atol=1e-5, rtol=1e-5)


def test_student_of_another_width_predicts_teacher_latents():
    torch.manual_seed(0)
    teacher = VisionTransformer(ViTSpec(64, 1, 2, 128, patch_size=8), FRAMES, RES).eval()
    student = VisionTransformer(ViTSpec(128, 1, 4, 256, patch_size=8), FRAMES, RES)
    pred = Predictor(128, teacher.width, student.grid, width=32, depth=1, heads=1)
    x = clips()
    ctx_idx = torch.stack([torch.randperm(32)[:8] for _ in range(2)])
    tgt_idx = torch.stack([torch.randperm(32)[:12] for _ in range(2)])
    with torch.no_grad():
        target = nn.functional.layer_norm(teacher(x), (64,))
    target = torch.gather(target, 1, tgt_idx[..., None].expand(-1, -1, 64))
    out = pred(student(x, ctx_idx), ctx_idx, tgt_idx)
    assert out.shape == target.shape == (2, 12, 64)
    (out - target).abs().mean().backward()
    assert student.patch_embed.weight.grad.abs().sum() > 0


def test_pixel_decoder_outputs_one_token_of_pixels():
    dec = pixel_decoder(64, (2, 4, 4), patch=8, tubelet=2, width=32, depth=1, heads=1)
    out = dec(torch.randn(1, 5, 64), torch.arange(5)[None], torch.arange(5, 9)[None])
    assert out.shape == (1, 4, 3 * 2 * 8 * 8)


# ---- patchify ------------------------------------------------------------------------------


def test_patchify_round_trip():
    x = clips(2)
    tokens = patchify(x, tubelet=2, patch=8)
    assert tokens.shape == (2, 32, 3, 128)
    torch.testing.assert_close(unpatchify(tokens, (2, 4, 4), 2, 8), x, rtol=0, atol=0)
    # Pixel order within a token is (dt, dy, dx): token 0, channel 1, dt=1, dy=2, dx=3.
    assert tokens[0, 0, 1, 1 * 64 + 2 * 8 + 3] == x[0, 1, 1, 2, 3]


def test_patchify_matches_the_conv_token_order():
    # A Conv3d whose output channel j copies pixel j of (c, dt, dy, dx) turns embeddings into pixels.
    tub, patch = 2, 2
    model = VisionTransformer(ViTSpec(3 * tub * patch * patch, 1, 1, 8, patch, tub), 4, 6)
    with torch.no_grad():
        model.patch_embed.weight.copy_(torch.eye(24).view(24, 3, tub, patch, patch))
        model.patch_embed.bias.zero_()
        x = torch.randn(2, 3, 4, 6, 6)
        embedded = model.embed(x)
    torch.testing.assert_close(embedded, patchify(x, tub, patch).flatten(2), atol=1e-6, rtol=0)


# ---- probe ---------------------------------------------------------------------------------


def test_probe_shape_and_default_heads():
    probe = AttentiveProbe(192, 7)
    assert len(probe.blocks) == 3 and probe.blocks[0].attn.heads == 3
    assert AttentiveProbe(96, 2).blocks[0].attn.heads == 1
    assert probe(torch.randn(5, 11, 192)).shape == (5, 7)


def test_probe_learns_a_separable_toy_problem():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (96,))
    centres = torch.randn(3, 32)
    feats = centres[labels][:, None, :] + 0.5 * torch.randn(96, 6, 32)
    probe = AttentiveProbe(32, 3, depth=2)
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(probe(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert (probe(feats).argmax(1) == labels).float().mean() > 0.9


def test_probe_without_grid_reads_a_bag_of_tokens_and_with_grid_reads_their_order():
    torch.manual_seed(0)
    grid = (2, 2, 2)
    feats = torch.randn(4, 8, 24)
    swapped = feats[:, torch.randperm(8)]
    bag = AttentiveProbe(24, 5, depth=2).eval()
    torch.testing.assert_close(bag(feats), bag(swapped), atol=1e-6, rtol=0)
    ordered = AttentiveProbe(24, 5, depth=2, grid=grid).eval()
    assert (ordered(feats) - ordered(swapped)).abs().max() > 5e-5  # outputs start small (init std 0.02)
    with pytest.raises(ValueError, match="tokens do not match"):
        ordered(torch.randn(4, 9, 24))


def test_position_code_is_distinct_per_token_and_zero_padded():
    code = sincos_position_code((3, 4, 5), 20)  # 3 axes x 6 dims, 2 leftover
    assert code.shape == (60, 20)
    assert torch.all(code[:, 18:] == 0)
    assert torch.cdist(code, code).add(torch.eye(60)).min() > 0.1  # no two tokens share a code
    # each axis's block depends on that axis only: tokens 0 and 1 differ in w alone
    torch.testing.assert_close(code[0, :12], code[1, :12])
    assert not torch.allclose(code[0, 12:18], code[1, 12:18])
