// Lets plotly.js draw under the console's content security policy (style-src 'self').
//
// plotly.js (through d3) sets a few style attributes with setAttribute("style", ...): the
// colour bar's empty style, the image-rendering probe of heat maps. The policy refuses
// style attributes set that way, but not the same declarations set through the element's
// CSSOM style object. This routes setAttribute("style", ...) there, for this page only;
// markup in lab text is still escaped by the server, and no other attribute changes.
// Loaded before plotly.min.js.
(function () {
  "use strict";
  var original = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (typeof name === "string" && name.toLowerCase() === "style" && this.style) {
      this.style.cssText = String(value);
      return;
    }
    return original.call(this, name, value);
  };
})();
