/*
 * attention_study: gives bertviz's views the d3 and jQuery they ask require.js for.
 *
 * bertviz's scripts call requirejs(['jquery', 'd3'], ...) and would fetch both from a CDN. The book
 * loads d3 5.7.0 and jQuery 2.2.4 (npm copies) just before this file, then require.js; here both are
 * registered as the named AMD modules 'd3' and 'jquery', so require.js never looks for them on the
 * network. A page that already had a jQuery (the classic Notebook has its own) gets it back.
 */
(function (global) {
  "use strict";
  var define = global.define;
  if (typeof define !== "function" || !define.amd) {
    throw new Error("attention_study: require.js must be loaded before bertviz_modules.js");
  }
  var d3 = global.d3;
  var jquery = global.jQuery;
  if (!d3 || typeof d3.select !== "function") {
    throw new Error("attention_study: d3 must be loaded before bertviz_modules.js");
  }
  if (!jquery || typeof jquery.noConflict !== "function") {
    throw new Error("attention_study: jQuery must be loaded before bertviz_modules.js");
  }
  jquery = jquery.noConflict(true);
  define("d3", [], function () { return d3; });
  define("jquery", [], function () { return jquery; });
}(window));
