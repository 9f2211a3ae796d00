/*
 * attention_study: the ViT patch-grid view's controls (bertviz has no view for images).
 * The picture is already drawn as SVG by Python; this script finds its view, reads the JSON of
 * weights (thousandths) and adds: a layer choice, head / mean of heads / rollout, and clicking a
 * patch to make it the query. No library, no network.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  var root = me && me.parentNode && me.parentNode.closest ? me.parentNode.closest(".attention-view") : null;
  if (!root) root = document.getElementById("__VIEW_ID__");
  if (!root || root.getAttribute("data-live")) return;
  root.setAttribute("data-live", "1");
  var d = JSON.parse(root.querySelector("script.attention-data").textContent);
  var n = d.n;

  function el(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  var state = { layer: d.layer, mode: "mean", query: d.rows[0] };
  var svg = root.querySelector("svg.attention-svg");
  var caption = svg.querySelector(".attention-caption");
  var caption2 = svg.querySelector(".attention-caption2");
  var rects = svg.querySelectorAll(".attention-patch");
  var ring = svg.querySelector(".attention-mark");

  // The weights from the current query to every token, in thousandths.
  function weights() {
    var r = d.rows.indexOf(state.query), out = [];
    for (var j = 0; j < n; j++) {
      var v = 0;
      if (state.mode === "rollout") {
        v = d.rollout[state.layer][r * n + j];
      } else if (state.mode === "mean") {
        for (var k = 0; k < d.heads_total; k++) v += d.att[state.layer][k][r * n + j];
        v /= d.heads_total;
      } else {
        v = d.att[state.layer][+state.mode][r * n + j];
      }
      out.push(v);
    }
    return out;
  }

  function draw() {
    var v = weights(), top = 0;
    for (var j = 1; j < n; j++) top = Math.max(top, v[j]);
    rects.forEach(function (r) {
      var i = +r.getAttribute("data-index");
      r.setAttribute("fill-opacity", top > 0 ? (0.85 * v[i] / top).toFixed(3) : "0");
      r.setAttribute("stroke", i === state.query ? "#00bfff" : "none");
    });
    var what = state.mode === "mean" ? "mean of heads" : state.mode === "rollout" ? "rollout" : "head " + state.mode;
    caption.textContent = d.tokens[state.query] + " \u2192 patches, layer " + state.layer + ", " + what;
    caption2.textContent = "to CLS " + (v[0] / d.scale).toFixed(3) + "; shading \u221d weight (max " +
      (top / d.scale).toFixed(3) + ")";
    ring.setAttribute("visibility", state.query === 0 ? "visible" : "hidden");
  }

  var box = el("div", { "class": "attention-controls" });
  root.insertBefore(box, svg);
  el("span", {}, box, "Layer ");
  var layers = el("select", {}, box);
  for (var l = 0; l < d.layers; l++) el("option", { value: l }, layers, "layer " + l);
  layers.value = state.layer;
  layers.addEventListener("change", function () { state.layer = +layers.value; draw(); });
  var modes = el("select", {}, box);
  el("option", { value: "mean" }, modes, "mean of heads");
  el("option", { value: "rollout" }, modes, "rollout");
  for (var k = 0; k < d.heads_total; k++) el("option", { value: k }, modes, "head " + k);
  modes.addEventListener("change", function () { state.mode = modes.value; draw(); });
  var cls = el("button", { type: "button" }, box, "query: [CLS]");
  cls.addEventListener("click", function () { state.query = 0; draw(); });
  rects.forEach(function (r) {
    r.addEventListener("click", function () {
      var i = +r.getAttribute("data-index");
      if (d.rows.indexOf(i) >= 0) { state.query = i; draw(); }
    });
  });
}());
