"""Attention views: bertviz's head/model/neuron views offline, escaped tokens, our ViT patch view."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup

from attention_study import interactive

EVIL = "</script><script>alert('x')</script><img src=x onerror=alert(1)>&amp;"
STATIC = Path(interactive.__file__).parent / "static"


def fake_trace(layers=2, heads=3, n_tokens=5, tokens=None, seed=0, d_head=4, causal=False):
    tokens = tokens or [f"t{i}" for i in range(n_tokens)]
    n = len(tokens)
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(layers, heads, n, n, generator=generator) * 2
    if causal:
        logits = logits.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1), -torch.inf)
    return SimpleNamespace(
        attentions=torch.softmax(logits, dim=-1), tokens=list(tokens),
        queries=torch.randn(layers, heads, n, d_head, generator=generator),
        keys=torch.randn(layers, heads, n, d_head, generator=generator),
    )


def vit_trace(side=4, layers=2, heads=2):
    tokens = ["[CLS]"] + [f"patch({r},{c})" for r in range(side) for c in range(side)]
    return fake_trace(layers, heads, tokens=tokens)


def params_of(view):
    """The parameters a bertviz view's script was given (decoded from its JSON)."""
    return json.loads(re.search(r"const params = (\{.*?\});", view.html).group(1))


BERTVIZ_VIEWS = {
    "head": lambda t: interactive.head_view(t, layer=1, heads=[0, 2]),
    "model": interactive.model_view,
    "neuron": lambda t: interactive.neuron_view(t, layer=1, head=2),
}


@pytest.mark.parametrize("kind", list(BERTVIZ_VIEWS))
def test_bertviz_views_name_no_outside_address(kind):
    view = BERTVIZ_VIEWS[kind](fake_trace())
    assert view.kind == kind and view.needs_scripts
    assert not re.search(r"https?:|cdnjs|require\.config|<script src", view.html)
    soup = BeautifulSoup(view.html, "html.parser")
    root_id = soup.find("div", class_="bertviz-view")["data-bertviz"]
    assert re.fullmatch(r"bertviz-[0-9a-f]{32}", root_id) and soup.find(id=root_id) is not None
    assert params_of(view)["root_div_id"] == root_id
    assert view.html.count("PYTHON_PARAMS") <= 1  # bertviz's doubled parameters are cut to one copy


def test_bertviz_weights_are_the_trace_rounded_to_three_decimals():
    trace = fake_trace()
    attn = np.array(params_of(interactive.model_view(trace))["attention"][0]["attn"])
    assert attn.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(attn, trace.attentions.numpy(), atol=5e-4 + 1e-7)
    head = params_of(interactive.head_view(trace, layer=1, heads=[2]))
    assert head["layer"] == 1 and head["heads"] == [2]


def test_neuron_view_carries_queries_keys_and_causality():
    trace = fake_trace(causal=True)
    params = params_of(interactive.neuron_view(trace, layer=1, head=2))
    data = params["attention"]["all"]
    np.testing.assert_allclose(np.array(data["queries"]), trace.queries.numpy(), atol=5e-4 + 1e-7)
    np.testing.assert_allclose(np.array(data["keys"]), trace.keys.numpy(), atol=5e-4 + 1e-7)
    assert params["bidirectional"] is False and (params["layer"], params["head"]) == (1, 2)
    assert params_of(interactive.neuron_view(fake_trace()))["bidirectional"] is True


@pytest.mark.parametrize("kind", list(BERTVIZ_VIEWS))
def test_token_with_html_and_script_cannot_inject(kind):
    trace = fake_trace(tokens=["ok", EVIL, "<b>bold</b>", 'quote"'])
    view = BERTVIZ_VIEWS[kind](trace)
    soup = BeautifulSoup(view.html, "html.parser")
    assert len(soup.find_all("script")) == 1  # bertviz's script, nothing injected
    assert soup.find("img") is None and soup.find("b") is None
    script = soup.find("script").string
    assert "<" not in script.split("const params = ", 1)[1].split(";\n", 1)[0]
    tokens = params_of(view)["attention"]
    tokens = (tokens["all"] if isinstance(tokens, dict) else tokens[0])["left_text"]
    assert tokens[2] == "<b>bold</b>"  # the JSON decodes back to the token, shown as text by d3


def test_scripts_are_sent_once_per_notebook(monkeypatch):
    monkeypatch.setitem(interactive._SENT, "scripts", False)
    first, second = (interactive.head_view(fake_trace())._repr_html_() for _ in range(2))
    assert first.startswith(interactive.SCRIPTS_BEGIN) and interactive.SCRIPTS_END in first
    assert interactive.SCRIPTS_BEGIN not in second
    scripts = interactive.notebook_scripts()
    assert scripts.count("</script>") == 4 and "cdnjs" not in scripts
    page = interactive.model_view(fake_trace()).standalone()
    assert page.startswith("<!DOCTYPE html>") and interactive.SCRIPTS_BEGIN in page


def test_script_files_are_the_pinned_npm_versions():
    files = interactive.bertviz_script_files()
    assert list(files) == ["d3.min.js", "jquery.min.js", "require.js", "bertviz_modules.js"]
    assert "v5.7.0" in files["d3.min.js"].read_text()[:200]
    assert "v2.2.4" in files["jquery.min.js"].read_text()[:200]
    assert "2.3.6" in files["require.js"].read_text()[:300]


def test_missing_npm_packages_are_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_NODE_MODULES", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make site-assets"):
        interactive.bertviz_script_files()


def test_patch_view_is_our_own_svg_and_script():
    view = interactive.patch_view(vit_trace(), np.arange(64.0).reshape(8, 8))
    soup = BeautifulSoup(view._repr_html_(), "html.parser")
    outer = soup.find("div")
    assert "attention-view" in outer["class"] and outer.find("svg") is not None
    assert view.kind == "patch" and not view.needs_scripts
    assert len(outer.find_all("script")) == 2  # our data and our script
    assert "http://" not in view.html and "https://" not in view.html


def test_patch_view_ids_are_serial_not_random():
    first, second = (interactive.patch_view(vit_trace(), np.zeros((8, 8))).html for _ in range(2))
    ids = [re.search(r'id="(attention-view-patch-[0-9]+)"', page).group(1) for page in (first, second)]
    assert ids[0] != ids[1]


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
    with pytest.raises(ValueError, match="at least one head"):
        interactive.head_view(trace, heads=[])
    with pytest.raises(IndexError, match="0..2"):
        interactive.neuron_view(trace, layer=0, head=-1)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        interactive.model_view(fake_trace(tokens=["only"]))
    with pytest.raises(ValueError, match=r"queries must be \[layer, head, token, d_head\]"):
        interactive.neuron_view(SimpleNamespace(**{**vars(trace), "queries": torch.zeros(2, 3, 4, 4)}))
    with pytest.raises(ValueError, match="square number of patches"):
        interactive.patch_view(fake_trace(n_tokens=6), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="image must be"):
        interactive.patch_view(vit_trace(), np.zeros(8))
    with pytest.raises(TypeError, match="Trace"):
        interactive.head_view("not a trace")


def test_bertviz_format():
    layers, tokens = interactive.to_bertviz(fake_trace(tokens=["Ġthe", "cat", "sat"]))
    assert len(layers) == 2 and layers[0].shape == (1, 3, 3, 3) and tokens[0] == "the"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to check the scripts' syntax")
@pytest.mark.parametrize("name", ["attention_views.js", "bertviz_modules.js"])
def test_our_scripts_parse(name):
    subprocess.run(["node", "--check", str(STATIC / name)], check=True, capture_output=True, timeout=60)
    assert '"use strict"' in (STATIC / name).read_text()


def dom_of(page: Path) -> BeautifulSoup:
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return BeautifulSoup(dom, "html.parser")


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless Chromium")
def test_views_draw_offline_in_a_headless_browser(tmp_path):
    trace = fake_trace(tokens=["ok", "<img src=x onerror=alert(1)>", "c", "d", "e"])
    views = [interactive.head_view(trace), interactive.model_view(trace), interactive.neuron_view(trace),
             interactive.head_view(trace, layer=1), interactive.patch_view(vit_trace(), np.zeros((8, 8)))]
    page = tmp_path / "views.html"
    page.write_text("<!DOCTYPE html><meta charset='utf-8'><body>" + interactive.notebook_scripts()
                    + "".join(v.html for v in views) + "</body>")
    soup = dom_of(page)
    bertviz = soup.select("div.bertviz-view")
    assert len(bertviz) == 4 and all(v.select_one("svg") for v in bertviz)
    head = bertviz[0]
    assert len(head.select("#attention line")) == 3 * 25  # every head's lines, 5 x 5 tokens each
    assert "<img src=x onerror=alert(1)>" in [t.get_text() for t in head.select("text")]
    assert soup.find("img") is None  # the token is text, not an element
    patch = soup.select_one("div.attention-view")
    assert patch.get("data-live") == "1" and patch.select_one(".attention-controls")


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless Chromium")
def test_views_draw_where_an_amd_loader_and_jquery_are_already_on_the_page(tmp_path):
    # The classic Notebook's page: require.js loaded, its own jQuery global and AMD module 'jquery'.
    files = interactive.bertviz_script_files()
    host = ("<script>" + files["require.js"].read_text() + "</script><script>" + files["jquery.min.js"].read_text()
            + "</script><script>window.hostJQuery = window.jQuery;"
            + "define('jquery', [], function () { return window.hostJQuery; }); require(['jquery']);</script>")
    trace = fake_trace()
    page = tmp_path / "classic.html"
    page.write_text("<!DOCTYPE html><meta charset='utf-8'><body>" + host + interactive.notebook_scripts()
                    + interactive.head_view(trace).html + interactive.neuron_view(trace).html
                    + "<script>document.body.setAttribute('data-host-jquery-kept', "
                    + "String(window.jQuery === window.hostJQuery));</script></body>")
    soup = dom_of(page)
    assert soup.body["data-host-jquery-kept"] == "true"
    views = soup.select("div.bertviz-view")
    assert len(views) == 2 and all(v.select_one("svg") for v in views)
