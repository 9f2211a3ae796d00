"""Equivariance of the reference attention layers, float64, with LoRAs, next to failing controls.

Each claim: max error over >= 10 random group elements <= 1e-10; each control: > 1e-3.
"""

from functools import partial

import numpy as np
import pytest
import torch

from attention_study.equivariance import (
    GROUP_ENCODINGS,
    GroupSelfAttention,
    LiftingSelfAttention,
    SelfAttention,
    calibrate_logits_,
    cyclic_offsets,
    encoding_codes,
    equivariance_error,
    invariance_error,
    mean_attention_entropy,
    orientation_blind,
    roundoff_bound,
    satisfies_condition,
)
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
from attention_study.lora import add_lora, randomize_lora_, with_lora

TOL = 1e-10
CONTROL = 1e-3
F64 = torch.float64


def test_equivariance_error_is_zero_for_an_equivariant_map_and_not_for_another():
    x = torch.randn(6, 3, dtype=F64)
    perms = random_permutations(6, 10, torch.Generator().manual_seed(0))
    assert equivariance_error(torch.tanh, x, perms, permute_tokens, permute_tokens) == 0.0
    cumsum = lambda t: t.cumsum(0)  # noqa: E731 - order-dependent: not equivariant
    assert equivariance_error(cumsum, x, perms, permute_tokens, permute_tokens) > CONTROL


def test_equivariance_error_needs_elements():
    with pytest.raises(ValueError, match="at least one"):
        equivariance_error(torch.tanh, torch.ones(2), [], None, None)


def test_permutation_equivariance_without_positions_and_failure_with_absolute():
    torch.manual_seed(0)
    x = torch.randn(7, 8, dtype=F64)
    perms = random_permutations(7, 12, torch.Generator().manual_seed(0))
    plain = with_lora(SelfAttention(8, 2))
    assert equivariance_error(plain, x, perms, permute_tokens, permute_tokens) < TOL
    absolute = with_lora(SelfAttention(8, 2, positions="absolute", shape=(7,)))
    assert equivariance_error(absolute, x, perms, permute_tokens, permute_tokens) > CONTROL


@pytest.mark.parametrize("max_distance", [None, 2])
def test_translation_equivariance_1d_relative_and_failure_with_absolute(max_distance):
    torch.manual_seed(0)
    x = torch.randn(9, 8, dtype=F64)
    shifts = random_shifts((9,), 12, torch.Generator().manual_seed(0))
    rel = with_lora(SelfAttention(8, 2, "relative", (9,), max_distance=max_distance))
    assert equivariance_error(rel, x, shifts, shift_sequence, shift_sequence) < TOL
    absolute = with_lora(SelfAttention(8, 2, "absolute", (9,)))
    assert equivariance_error(absolute, x, shifts, shift_sequence, shift_sequence) > CONTROL


def test_translation_equivariance_2d_relative_and_failure_with_absolute():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 8, dtype=F64)
    shifts = random_shifts((4, 5), 12, torch.Generator().manual_seed(0))
    rel = with_lora(SelfAttention(8, 2, "relative", (4, 5)))
    assert equivariance_error(rel, x, shifts, shift_grid, shift_grid) < TOL
    absolute = with_lora(SelfAttention(8, 2, "absolute", (4, 5)))
    assert equivariance_error(absolute, x, shifts, shift_grid, shift_grid) > CONTROL


def test_cyclic_offsets_depend_only_on_the_difference():
    index, count = cyclic_offsets((6,))
    assert count == 7
    assert torch.equal(index[0].roll(2), index[2])
    index, count = cyclic_offsets((6,), max_distance=1)
    assert count == 3 and int(index.max()) == 2


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_lifting_self_attention_is_equivariant_and_unrotated_offsets_are_not(group):
    g = point_group(group)
    torch.manual_seed(0)
    x = torch.randn(5, 5, 3, dtype=F64)
    els = random_grid_elements(g, 5, 10, torch.Generator().manual_seed(0))
    act_in, act_out = partial(act_on_grid, g), partial(act_on_group_signal, g)
    lift = with_lora(LiftingSelfAttention(group, 5, 3, 8, 2, encoding_std=1.0))
    calibrate_logits_(lift, x)
    assert equivariance_error(lift, x, els, act_in, act_out) < TOL
    control = with_lora(LiftingSelfAttention(group, 5, 3, 8, 2, rotate_offsets=False,
                                              encoding_std=1.0))
    calibrate_logits_(control, x)
    assert equivariance_error(control, x, els, act_in, act_out) > CONTROL


EXPECTED_VALID = {
    "p4": {"paper": False, "proposed": True, "output-relative": True, "pair": True,
           "conjugated": True, "absolute": False, "none": True, "authors-code": False,
           "gevit-code": True},
    "p4m": {"paper": False, "proposed": True, "output-relative": True, "pair": True,
            "conjugated": False, "absolute": False, "none": True, "authors-code": False,
            "gevit-code": False},
}


@pytest.mark.parametrize("group", ["p4", "p4m"])
@pytest.mark.parametrize("encoding", ["paper", "proposed", "output-relative", "conjugated",
                                      "authors-code", "gevit-code"])
def test_group_self_attention_error_follows_the_condition(group, encoding):
    g = point_group(group)
    assert satisfies_condition(g, encoding_codes(g, encoding)[0]) == EXPECTED_VALID[group][encoding]
    torch.manual_seed(0)
    x = torch.randn(g.order, 4, 4, 3, dtype=F64)
    els = random_grid_elements(g, 4, 10, torch.Generator().manual_seed(0))
    layer = with_lora(GroupSelfAttention(group, 4, 3, 8, 2, encoding=encoding, encoding_std=1.0))
    calibrate_logits_(layer, x)
    act = partial(act_on_group_signal, g)
    err = equivariance_error(layer, x, els, act, act)
    if EXPECTED_VALID[group][encoding]:
        assert err < TOL
    else:
        assert err > CONTROL


def test_condition_matches_the_expected_table_for_every_encoding():
    for group, row in EXPECTED_VALID.items():
        g = point_group(group)
        assert set(row) == set(GROUP_ENCODINGS)
        for enc, valid in row.items():
            assert satisfies_condition(g, encoding_codes(g, enc)[0]) == valid, (group, enc)


def test_proposed_encoding_is_blind_to_the_orientation_axis_and_output_relative_is_not():
    g = point_group("p4")
    torch.manual_seed(0)
    x = torch.randn(4, 4, 4, 3, dtype=F64)
    act = partial(act_on_orientation, g)
    errs = {}
    for enc in ("proposed", "output-relative"):
        layer = with_lora(GroupSelfAttention("p4", 4, 3, 8, 2, encoding=enc, encoding_std=1.0))
        calibrate_logits_(layer, x)
        errs[enc] = invariance_error(layer, x, [1, 2, 3], act)
    assert errs["proposed"] < TOL
    assert errs["output-relative"] > CONTROL


BLIND = {"paper": True, "proposed": True, "output-relative": False, "pair": False,
         "conjugated": True, "absolute": False, "none": True}
# the public code's tables: blind on p4 for the authors' (a function of h and h1⁻¹h2), not otherwise
CODE_BLIND = {("authors-code", "p4"): True, ("authors-code", "p4m"): False,
              ("gevit-code", "p4"): False, ("gevit-code", "p4m"): False}


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_orientation_blindness_condition_predicts_the_measured_invariance(group):
    g = point_group(group)
    torch.manual_seed(0)
    x = torch.randn(g.order, 3, 3, 3, dtype=F64)
    act = partial(act_on_orientation, g)
    for enc, expected in BLIND.items():
        assert orientation_blind(g, encoding_codes(g, enc)[0]) == expected, enc
        torch.manual_seed(1)
        layer = with_lora(GroupSelfAttention(group, 3, 3, 8, 2, encoding=enc, encoding_std=1.0))
        calibrate_logits_(layer, x)
        err = invariance_error(layer, x, list(range(1, g.order)), act)
        assert (err < TOL) if expected else (err > CONTROL), (enc, err)


def test_calibration_sets_logit_std_and_sharpens_attention():
    torch.manual_seed(0)
    x = torch.randn(4, 4, 4, 3, dtype=F64)
    layer = GroupSelfAttention("p4", 4, 3, 8, 2)
    flat = mean_attention_entropy(layer.logits(x), 2)
    calibrate_logits_(layer, x, target_std=3.0)
    assert abs(float(layer.logits(x).detach().std()) - 3.0) < 1e-9
    assert mean_attention_entropy(layer.logits(x), 2) < flat


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="p4, p4m"):
        GroupSelfAttention("p3", 4, 3, 8, 2)
    with pytest.raises(ValueError, match="valid: paper"):
        GroupSelfAttention("p4", 4, 3, 8, 2, encoding="mine")
    layer = GroupSelfAttention("p4", 4, 3, 8, 2)
    with pytest.raises(ValueError, match="expects 3"):
        layer(torch.zeros(4, 4, 4, 5, dtype=F64))
    with pytest.raises(ValueError, match="square N x N"):
        layer(torch.zeros(4, 4, 5, 3, dtype=F64))
    with pytest.raises(ValueError, match="built for a 4 x 4"):
        layer(torch.zeros(4, 5, 5, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"\[4, N, N, C\]"):
        layer(torch.zeros(8, 4, 4, 3, dtype=F64))
    lift = LiftingSelfAttention("p4m", 5, 3, 8, 2)
    with pytest.raises(ValueError, match="square N x N"):
        lift(torch.zeros(5, 6, 3, dtype=F64))
    with pytest.raises(ValueError, match="square N x N"):
        LiftingSelfAttention("p4", 0, 3, 8, 2)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SelfAttention(9, 2)
    with pytest.raises(ValueError, match="expects 8"):
        SelfAttention(8, 2)(torch.zeros(5, 7, dtype=F64))
    with pytest.raises(ValueError, match="valid: none, absolute, relative"):
        SelfAttention(8, 2, positions="rotary", shape=(5,))
    with pytest.raises(ValueError, match="needs shape"):
        SelfAttention(8, 2, positions="relative")
    with pytest.raises(ValueError, match="built for positions of shape"):
        SelfAttention(8, 2, "relative", (5,))(torch.zeros(6, 8, dtype=F64))


def test_hugging_face_bert_layer_with_lora_is_permutation_equivariant_without_positions():
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    from attention_study.equivariance import float64_copy, token_function

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32)
    cfg._attn_implementation = "eager"
    original = BertLayer(cfg)
    layer = float64_copy(original)
    assert next(original.parameters()).dtype == torch.float32  # the original is left alone
    randomize_lora_(add_lora(layer.attention, 2, ("self.query", "self.key", "self.value",
                                                  "output.dense")),
                    0.3, torch.Generator().manual_seed(1))
    f = token_function(layer)
    x = torch.randn(6, 16, dtype=F64)
    perms = random_permutations(6, 10, torch.Generator().manual_seed(0))
    assert equivariance_error(f, x, perms, permute_tokens, permute_tokens) < TOL
    positions = torch.randn(6, 16, dtype=F64)
    with_positions = lambda h: f(h + positions)  # noqa: E731
    assert equivariance_error(with_positions, x, perms, permute_tokens, permute_tokens) > CONTROL


def test_roundoff_bound_reads_errors_at_the_dtype_resolution():
    assert roundoff_bound(0.0) == roundoff_bound(3e-17) == roundoff_bound(4e-16) == "1e-15"
    assert roundoff_bound(2e-15) == "1e-14"
    assert roundoff_bound(3e-8, torch.float32) == roundoff_bound(9e-7, torch.float32) == "1e-06"
    assert roundoff_bound(0.3) == "1e00"


def test_batched_equivariance_error_equals_the_maximum_of_the_unbatched_one():
    from attention_study.equivariance import batched_equivariance_error

    torch.manual_seed(0)
    layer = with_lora(SelfAttention(8, 2, "relative", (4, 5)))
    xs = torch.randn(3, 4, 5, 8, dtype=F64)
    shifts = random_shifts((4, 5), 6, torch.Generator().manual_seed(0))
    absolute = with_lora(SelfAttention(8, 2, "absolute", (4, 5)))
    for f in (layer, absolute):
        batched = batched_equivariance_error(lambda b, f=f: torch.stack([f(x) for x in b]), xs, shifts,
                                             shift_grid, shift_grid)
        single = max(equivariance_error(f, x, shifts, shift_grid, shift_grid) for x in xs)
        assert abs(batched - single) <= 1e-12 * max(single, 1e-300)
    with pytest.raises(ValueError, match="at least one"):
        batched_equivariance_error(layer, xs[:0], shifts, shift_grid, shift_grid)


def test_vit_without_position_embeddings_follows_patch_shifts_and_with_them_does_not():
    from transformers import ViTConfig, ViTForImageClassification

    from attention_study.equivariance import (
        batched_equivariance_error,
        vit_float64_copy,
        vit_patch_outputs,
    )
    from attention_study.groups import shift_image_by_patches

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=16, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=32, num_labels=3)
    model = ViTForImageClassification(cfg).eval()
    with torch.no_grad():
        model.vit.embeddings.position_embeddings.normal_()
    before = model.vit.embeddings.position_embeddings.detach().clone()

    def processor(images):
        return {"pixel_values": torch.as_tensor(images, dtype=torch.float32)[:, None]}

    images = torch.rand(3, 8, 8, dtype=F64)
    shifts = [(a, b) for a in range(4) for b in range(4) if (a, b) != (0, 0)]
    errs = {}
    for keep in (True, False):
        copy64 = vit_float64_copy(model, position_embeddings=keep)
        assert next(copy64.parameters()).dtype == F64
        errs[keep] = batched_equivariance_error(
            vit_patch_outputs(copy64, processor), images, shifts,
            lambda t, img: shift_image_by_patches(t, img, 2), shift_grid)
    assert errs[False] < TOL
    assert errs[True] > CONTROL
    assert torch.equal(model.vit.embeddings.position_embeddings, before)  # the original is untouched


# The tables c[v, g, m] printed by the public code, flattened (v slowest), in its own labels:
# `torch.stack([G.left_action_on_H(h, G.relative_positions) for h in G.elements])` with
# G = SE2(4) or E2(8) from g_selfatt/groups, at the commits of CODE_SOURCES.
PRINTED_TABLES = {
    ("authors-code", "p4"): "0123301223011230123001233012230123011230012330123012230112300123",
    ("gevit-code", "p4"): "0321210303212103321010323210103221030321210303211032321010323210",
    ("authors-code", "p4m"): (
        "0123456730125674230167451230745645670123567430126745230174561230"
        "3012567423016745123074560123456774561230456701235674301267452301"
        "2301674512307456012345673012567467452301745612304567012356743012"
        "1230745601234567301256742301674556743012674523017456123045670123"
        "4567012356743012674523017456123001234567301256742301674512307456"
        "7456123045670123567430126745230130125674230167451230745601234567"
        "6745230174561230456701235674301223016745123074560123456730125674"
        "5674301267452301745612304567012312307456012345673012567423016745"),
    ("gevit-code", "p4m"): (
        "0123456730125674230167451230745645670123745612306745230156743012"
        "3012567423016745123074560123456756743012456701237456123067452301"
        "2301674512307456012345673012567467452301567430124567012374561230"
        "1230745601234567301256742301674574561230674523015674301245670123"
        "4567012374561230674523015674301201234567301256742301674512307456"
        "7456123067452301567430124567012312307456012345673012567423016745"
        "6745230156743012456701237456123023016745123074560123456730125674"
        "5674301245670123745612306745230130125674230167451230745601234567"),
}


@pytest.mark.parametrize(("variant", "group"), list(PRINTED_TABLES))
def test_code_tables_reproduce_the_tables_the_public_code_prints(variant, group):
    from attention_study.equivariance import code_tables

    g = point_group(group)
    expected = np.array([int(c) for c in PRINTED_TABLES[variant, group]]).reshape(g.order, g.order, g.order)
    assert np.array_equal(code_tables(g, variant), expected)


def test_authors_code_on_p4_is_the_paper_encoding_read_in_the_codes_own_labels():
    """With the output label v read as h⁻¹ and the inputs as stored, c[v, g, m] = h⁻¹ g⁻¹ m."""
    from attention_study.equivariance import code_tables

    g = point_group("p4")
    c = code_tables(g, "authors-code")
    paper = encoding_codes(g, "paper")[0]
    assert all(c[g.inv(h), a, b] == paper[h, a, b] for h in range(4) for a in range(4) for b in range(4))


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_conjugated_equals_proposed_on_p4_only(group):
    g = point_group(group)
    same = np.array_equal(encoding_codes(g, "conjugated")[0], encoding_codes(g, "proposed")[0])
    assert same == (group == "p4")


def test_code_variant_must_be_known():
    from attention_study.equivariance import code_tables

    with pytest.raises(ValueError, match="valid: authors-code, gevit-code"):
        code_tables(point_group("p4"), "mine")


def test_code_tables_orientation_blindness():
    for (variant, group), expected in CODE_BLIND.items():
        g = point_group(group)
        assert orientation_blind(g, encoding_codes(g, variant)[0]) == expected, (variant, group)


def test_group_attention_without_rotated_offsets_or_group_term_breaks_rotations_not_translations():
    g = point_group("p4")
    torch.manual_seed(0)
    x = torch.randn(4, 4, 4, 3, dtype=F64)
    layer = GroupSelfAttention("p4", 4, 3, 8, 2, encoding="none", rotate_offsets=False, encoding_std=1.0)
    calibrate_logits_(layer, x)
    act = partial(act_on_group_signal, g)
    shifts = [GridElement((a, b), 0) for a in range(4) for b in range(4) if (a, b) != (0, 0)]
    turns = [GridElement((0, 0), r) for r in (1, 2, 3)]
    assert equivariance_error(layer, x, shifts, act, act) < TOL
    assert equivariance_error(layer, x, turns, act, act) > CONTROL
