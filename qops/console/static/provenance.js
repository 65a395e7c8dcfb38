// Draws the Plotly figures of the provenance pages. A figure comes as JSON in the
// data-figure attribute of its element (no inline script: the page's CSP forbids them).
"use strict";
(function () {
  function draw(element) {
    var figure = JSON.parse(element.getAttribute("data-figure"));
    // No modebar: it would insert a <style> element of its own, which the CSP refuses.
    var config = { displayModeBar: false, responsive: true };
    window.Plotly.newPlot(element, figure.data, figure.layout, config).then(function () {
      element.setAttribute("data-rendered", String(figure.data[0].x.length));
    });
  }
  function start() {
    var elements = document.querySelectorAll("[data-figure]");
    for (var i = 0; i < elements.length; i++) {
      draw(elements[i]);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
