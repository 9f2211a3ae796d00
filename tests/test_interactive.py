"""HTML views: static SVG inside .attention-view, escaped tokens, compact data, bad input."""

import json
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup

from attention_study import interactive

EVIL = "</script><script>alert('x')</script><img src=x onerror=alert(1)>&amp;"


def fake_trace(layers=2, heads=3, n_tokens=5, tokens=None, seed=0):
    tokens = tokens or [f"t{i}" for i in range(n_tokens)]
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(layers, heads, len(tokens), len(tokens), generator=generator) * 2
    return SimpleNamespace(attentions=torch.softmax(logits, dim=-1), tokens=list(tokens))


def vit_trace(side=4, layers=2, heads=2):
    tokens = ["[CLS]"] + [f"patch({r},{c})" for r in range(side) for c in range(side)]
    return fake_trace(layers, heads, tokens=tokens)


def all_views():
    return {
        "head": interactive.head_view(fake_trace(), layer=1),
        "model": interactive.model_view(fake_trace()),
        "patch": interactive.patch_view(vit_trace(), np.arange(64.0).reshape(8, 8)),
    }


@pytest.mark.parametrize("kind", ["head", "model", "patch"])
def test_every_view_is_an_attention_view_div_with_static_svg(kind):
    view = all_views()[kind]
    soup = BeautifulSoup(view._repr_html_(), "html.parser")
    outer = soup.find("div")
    assert "attention-view" in outer["class"]
    assert outer.find("svg") is not None
    assert view.kind == kind
    # our script and our data only; nothing fetched from elsewhere
    assert len(outer.find_all("script")) == 2
    assert "http://" not in view.html and "https://" not in view.html


def test_head_view_static_svg_has_one_line_per_weight_above_threshold():
    trace = fake_trace()
    view = interactive.head_view(trace, layer=1, heads=[2], threshold=0.1)
    soup = BeautifulSoup(view.html, "html.parser")
    expected = int((trace.attentions[1, 2] >= 0.1).sum())
    assert len(soup.select("svg g.attention-lines line")) == expected
    tokens = [t.get_text() for t in soup.select("text.attention-token")]
    assert tokens == trace.tokens * 2


def test_token_with_html_and_script_cannot_inject():
    trace = fake_trace(tokens=["ok", EVIL, "<b>bold</b>", 'quote"'])
    for view in (interactive.head_view(trace), interactive.model_view(trace)):
        soup = BeautifulSoup(view.html, "html.parser")
        assert len(soup.find_all("script")) == 2  # the data and our script, nothing injected
        assert soup.find("img") is None and soup.find("b") is None
        assert view.html.count("</script>") == 2
        labels = {t.get_text() for t in soup.select("text.attention-token")}
        assert "<b>bold</b>" in labels  # shown as text
        data = json.loads(soup.find("script", class_="attention-data").string)
        assert data["tokens"][2] == "<b>bold</b>"  # the JSON decodes back to the token
        assert "<" not in soup.find("script", class_="attention-data").string


def test_embedded_weights_round_to_three_decimals():
    trace = fake_trace()
    view = interactive.model_view(trace)
    data = json.loads(BeautifulSoup(view.html, "html.parser").find("script", class_="attention-data").string)
    stored = np.array(data["att"], dtype=float).reshape(2, 3, 5, 5) / data["scale"]
    np.testing.assert_allclose(stored, trace.attentions.numpy(), atol=5e-4 + 1e-9)


def test_model_view_for_6_layers_12_heads_32_tokens_is_under_one_megabyte():
    view = interactive.model_view(fake_trace(layers=6, heads=12, n_tokens=32))
    assert view.nbytes <= 1_000_000
    assert len(BeautifulSoup(view.html, "html.parser").select("rect.attention-cell")) == 72


def test_views_are_deterministic_up_to_their_serial():
    import re

    first, second = (interactive.model_view(fake_trace()).html for _ in range(2))
    assert first != second  # two views on one page never share an id
    strip = re.compile(r"(attention-view-model-[0-9a-f]{12})-[0-9]+")
    assert strip.sub(r"\1", first) == strip.sub(r"\1", second)


def test_patch_view_shades_patches_by_cls_attention():
    trace = vit_trace()
    view = interactive.patch_view(trace, np.zeros((8, 8)), layer=0)
    rects = BeautifulSoup(view.html, "html.parser").select("rect.attention-patch")
    assert len(rects) == 16
    weights = trace.attentions[0].mean(dim=0)[0, 1:].numpy()
    opacities = np.array([float(r["fill-opacity"]) for r in rects])
    np.testing.assert_allclose(opacities, 0.85 * weights / weights.max(), atol=1e-3)


def test_bad_input_is_refused_with_the_valid_range():
    trace = fake_trace()
    with pytest.raises(IndexError, match="0..1"):
        interactive.head_view(trace, layer=2)
    with pytest.raises(IndexError, match="0..2"):
        interactive.head_view(trace, heads=[0, 3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interactive.model_view(trace, threshold=2.0)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        interactive.head_view(fake_trace(tokens=["only"]))
    with pytest.raises(ValueError, match="square number of patches"):
        interactive.patch_view(fake_trace(n_tokens=6), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="image must be"):
        interactive.patch_view(vit_trace(), np.zeros(8))
    with pytest.raises(TypeError, match="Trace"):
        interactive.head_view("not a trace")


def test_bertviz_format():
    layers, tokens = interactive.to_bertviz(fake_trace())
    assert len(layers) == 2 and layers[0].shape == (1, 3, 5, 5) and tokens[0] == "t0"


def test_standalone_page_is_saved(tmp_path):
    path = all_views()["head"].save(tmp_path / "view.html")
    assert path.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless Chromium")
def test_scripts_run_in_a_headless_browser(tmp_path):
    page = tmp_path / "views.html"
    page.write_text("<!DOCTYPE html><meta charset='utf-8'>" + "".join(v.html for v in all_views().values()))
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    soup = BeautifulSoup(dom, "html.parser")
    views = soup.select("div.attention-view")
    assert len(views) == 3
    assert all(v.get("data-live") == "1" and v.select_one(".attention-controls") for v in views)
