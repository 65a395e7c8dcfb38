// The dataset page's quick-look plot: fetch the reduced data, draw it with Plotly, and
// offer a variable picker and a slice selector when the dataset has them.
// Loaded as a file (the content security policy allows no inline script).
(function () {
  "use strict";

  var holder = document.getElementById("plot");
  if (!holder || !window.Plotly) {
    return;
  }
  var baseUrl = holder.getAttribute("data-plot-url");
  var controls = document.getElementById("plot-controls");
  var picker = document.getElementById("variable-picker");
  var select = document.getElementById("variable");
  var sliceBox = document.getElementById("slice-controls");
  var reductionNote = document.getElementById("plot-reduction");
  var state = { variable: null, slices: {} };
  var drawn = false;

  function setStatus(text, isError) {
    var status = document.getElementById("plot-status");
    if (!status) {
      status = document.createElement("p");
      status.id = "plot-status";
      holder.parentNode.insertBefore(status, holder);
    }
    status.className = isError ? "error" : "muted";
    status.textContent = text;
  }

  function clearStatus() {
    var status = document.getElementById("plot-status");
    if (status) {
      status.parentNode.removeChild(status);
    }
  }

  function plotUrl() {
    var params = new URLSearchParams();
    if (state.variable) {
      params.append("var", state.variable);
    }
    Object.keys(state.slices).forEach(function (dim) {
      params.append("slice", dim + "=" + state.slices[dim]);
    });
    // The server reduces the data to the plot's size in CSS pixels.
    params.append("width", String(Math.max(50, Math.round(holder.clientWidth || 900))));
    params.append("height", String(Math.max(50, Math.round(holder.clientHeight || 500))));
    return baseUrl + "?" + params.toString();
  }

  function fillPicker(plot) {
    if (plot.variables.length < 2) {
      picker.hidden = true;
      return;
    }
    picker.hidden = false;
    if (select.options.length !== plot.variables.length) {
      select.textContent = "";
      plot.variables.forEach(function (name) {
        var option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        select.appendChild(option);
      });
    }
    select.value = plot.variable;
  }

  function fillSlices(plot) {
    sliceBox.textContent = "";
    plot.slices.forEach(function (axis) {
      var label = document.createElement("label");
      label.className = "slice";
      var name = document.createElement("span");
      name.textContent = axis.dim + " ";
      var input = document.createElement("input");
      input.type = "range";
      input.min = "0";
      input.max = String(axis.size - 1);
      input.value = String(axis.index);
      input.setAttribute("data-dim", axis.dim);
      input.setAttribute("aria-label", "index of " + axis.dim);
      var shown = document.createElement("output");
      shown.textContent = axis.index + " / " + (axis.size - 1) + (axis.value !== null ? " (" + axis.value + ")" : "");
      input.addEventListener("change", function () {
        state.slices[axis.dim] = Number(input.value);
        load();
      });
      label.appendChild(name);
      label.appendChild(input);
      label.appendChild(shown);
      sliceBox.appendChild(label);
    });
  }

  function draw(plot) {
    state.variable = plot.variable;
    fillPicker(plot);
    fillSlices(plot);
    controls.hidden = picker.hidden && plot.slices.length === 0;
    reductionNote.textContent = plot.reduction ? "Reduced for the screen: " + plot.reduction + "." : "";
    if (plot.kind === "none") {
      if (drawn) {
        window.Plotly.purge(holder);
        drawn = false;
      }
      setStatus("Nothing to plot: " + plot.message + ".", false);
      return;
    }
    clearStatus();
    var config = { responsive: true, displaylogo: false };
    var done = drawn
      ? window.Plotly.react(holder, plot.traces, plot.layout, config)
      : window.Plotly.newPlot(holder, plot.traces, plot.layout, config);
    drawn = true;
    done.then(function () {
      holder.setAttribute("data-plot-drawn", plot.variable);
      holder.dispatchEvent(new CustomEvent("qops:plot-drawn"));
    });
  }

  function load() {
    holder.removeAttribute("data-plot-drawn");
    fetch(plotUrl(), { headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (!answer.ok) {
          return answer.json().then(
            function (body) {
              var detail = body.detail;
              if (Array.isArray(detail)) {
                detail = detail.map(function (item) {
                  return item.loc.filter(function (part) { return part !== "query"; }).join(".") + ": " + item.msg;
                }).join("; ");
              }
              throw new Error(detail || answer.statusText);
            },
            function () { throw new Error("HTTP " + answer.status); }
          );
        }
        return answer.json();
      })
      .then(draw)
      .catch(function (error) {
        setStatus("The plot could not be loaded: " + error.message, true);
      });
  }

  select.addEventListener("change", function () {
    state.variable = select.value;
    state.slices = {};
    load();
  });
  load();
})();
