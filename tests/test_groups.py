"""Group actions: exact, composable, and loud about grids they cannot act on."""

import numpy as np
import pytest
import torch

from attention_study.groups import (
    GridElement,
    act_on_grid,
    act_on_group_signal,
    act_on_orientation,
    permute_tokens,
    point_group,
    random_grid_elements,
    random_permutations,
    random_shifts,
    shift_grid,
    shift_sequence,
)


@pytest.mark.parametrize(("name", "order"), [("p4", 4), ("p4m", 8)])
def test_point_group_is_a_group_of_the_right_order(name, order):
    g = point_group(name)
    assert g.order == order
    assert np.array_equal(g.matrices[0], np.eye(2))
    for a in range(order):
        assert g.mul(a, g.inv(a)) == 0
        for b in range(order):
            assert np.array_equal(g.matrices[g.mul(a, b)], g.matrices[a] @ g.matrices[b])


def test_p4m_is_not_abelian_and_p4_is():
    p4, p4m = point_group("p4"), point_group("p4m")
    assert np.array_equal(p4.table, p4.table.T)
    assert not np.array_equal(p4m.table, p4m.table.T)


def test_unknown_group_name_lists_valid_names():
    with pytest.raises(ValueError, match="p4, p4m"):
        point_group("p6")


def test_rotation_by_90_degrees_moves_a_pixel_as_expected():
    g = point_group("p4")
    f = torch.zeros(5, 5, 1)
    f[0, 1, 0] = 1.0  # pixel at (row 0, col 1)
    out = act_on_grid(g, GridElement((0, 0), 1), f)
    # rotation (r, c) -> (-c, r): (0, 1) -> (-1, 0) = (4, 0) on the torus
    assert out[4, 0, 0] == 1.0 and out.sum() == 1.0


@pytest.mark.parametrize("name", ["p4", "p4m"])
def test_grid_action_is_a_left_action(name):
    g = point_group(name)
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(6, 6, 2, generator=gen)
    a, b = random_grid_elements(g, 6, 2, gen)
    ab = GridElement(
        tuple(int(v) for v in (np.array(a.shift) + g.matrices[a.rotation] @ np.array(b.shift)) % 6),
        g.mul(a.rotation, b.rotation),
    )
    assert torch.equal(act_on_grid(g, a, act_on_grid(g, b, f)), act_on_grid(g, ab, f))
    F = torch.randn(g.order, 6, 6, 2, generator=gen)
    assert torch.equal(
        act_on_group_signal(g, a, act_on_group_signal(g, b, F)), act_on_group_signal(g, ab, F)
    )


def test_orientation_action_leaves_positions_alone():
    g = point_group("p4m")
    F = torch.randn(8, 4, 4, 1)
    out = act_on_orientation(g, 1, F)
    assert torch.equal(out[1], F[0])  # (S_s F)(x, s) = F(x, e)
    assert torch.equal(act_on_orientation(g, 0, F), F)


@pytest.mark.parametrize("shape", [(5, 6), (5,), (0, 0)])
def test_p4_refuses_grids_it_cannot_act_on(shape):
    with pytest.raises(ValueError, match="square N x N"):
        act_on_grid(point_group("p4"), GridElement((0, 0), 1), torch.zeros(*shape, 1))


def test_group_signal_with_wrong_orientation_axis_is_refused():
    with pytest.raises(ValueError, match=r"\[8, N, N, C\]"):
        act_on_group_signal(point_group("p4m"), GridElement((0, 0), 1), torch.zeros(4, 5, 5, 1))


def test_translations_and_permutations():
    x = torch.arange(5.0)[:, None]
    assert shift_sequence(1, x)[1, 0] == 0.0
    y = torch.arange(12.0).reshape(3, 4, 1)
    assert shift_grid((1, 2), y)[1, 2, 0] == 0.0
    p = torch.tensor([2, 0, 1])
    assert torch.equal(permute_tokens(p, torch.tensor([10, 11, 12])), torch.tensor([12, 10, 11]))
    with pytest.raises(ValueError, match="length 3 for 4 tokens"):
        permute_tokens(p, torch.zeros(4))


def test_random_elements_are_never_the_identity():
    gen = torch.Generator().manual_seed(0)
    assert all(not torch.equal(p, torch.arange(3)) for p in random_permutations(3, 20, gen))
    assert all(s != 0 for s in random_shifts((4,), 20, gen))
    assert all(t != (0, 0) for t in random_shifts((2, 2), 20, gen))
    els = random_grid_elements(point_group("p4"), 2, 30, gen)
    assert all(e.shift != (0, 0) or e.rotation != 0 for e in els)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        random_permutations(1, 1, gen)


def test_shift_image_by_patches_rolls_whole_patches_and_refuses_bad_sizes():
    from attention_study.groups import shift_image_by_patches

    img = torch.arange(64.0).reshape(8, 8)
    moved = shift_image_by_patches((1, 2), img, 2)
    assert torch.equal(moved, torch.roll(img, (2, 4), (0, 1)))
    batch = torch.stack([img, -img])
    assert torch.equal(shift_image_by_patches((1, 2), batch, 2)[1], -moved)
    with pytest.raises(ValueError, match="divisible by the patch size 3"):
        shift_image_by_patches((1, 0), img, 3)
    with pytest.raises(ValueError, match="positive"):
        shift_image_by_patches((1, 0), img, 0)
