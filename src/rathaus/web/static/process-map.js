/* Process map (Lagebild › Prozesse): frequency slider and node details.
 *
 * Progressive enhancement of the server-drawn SVG: without JavaScript the map, the tables and
 * the filter form work on their own. Reads the numbers from <script type="application/json">
 * (never from HTML), writes only with textContent. Keyboard: nodes are focusable; Enter or
 * Space selects a node, Escape clears the selection.
 */
(function () {
  "use strict";

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }

  function setup(root) {
    var dataEl = document.getElementById(root.getAttribute("data-map-data"));
    if (!dataEl) { return; }
    var data = JSON.parse(dataEl.textContent);
    var svg = root.querySelector("svg");
    var slider = root.querySelector("input.pm-slider");
    var output = root.querySelector("output.pm-slider-value");
    var details = root.querySelector(".pm-details");
    var edges = Array.prototype.slice.call(svg.querySelectorAll(".pm-edge"));
    var nodes = Array.prototype.slice.call(svg.querySelectorAll(".pm-node"));
    var byId = {};
    data.nodes.forEach(function (n) { byId[n.id] = n; });
    var selected = null;
    var counts = data.counts;

    function minimum() {
      return slider ? counts[parseInt(slider.value, 10)] || 1 : 1;
    }

    function applyFilter() {
      var min = minimum();
      var visible = 0, total = 0;
      edges.forEach(function (e) {
        var c = parseInt(e.getAttribute("data-count"), 10);
        var inner = e.getAttribute("data-source") >= 0 && e.getAttribute("data-target") >= 0;
        var show = c >= min;
        e.classList.toggle("pm-hidden", !show);
        if (inner) { total += 1; if (show) { visible += 1; } }
      });
      if (output) {
        output.textContent = "ab " + min + "-mal: " + visible + " von " + total + " Übergängen";
      }
    }

    function showDetails(id) {
      details.textContent = "";
      if (id === null) {
        details.appendChild(text("p", "Keine Aktivität gewählt. Klicken Sie auf eine Aktivität oder wählen Sie sie mit Tab und Eingabetaste."));
        return;
      }
      var n = byId[id];
      details.appendChild(text("h3", n.name));
      var dl = document.createElement("dl");
      [["Ereignisse", n.events], ["Fälle", n.cases], ["Beginnt Fälle", n.start],
       ["Beendet Fälle", n.end], ["Wartezeit davor (Median)", n.wait_median]].forEach(function (p) {
        dl.appendChild(text("dt", p[0]));
        dl.appendChild(text("dd", String(p[1])));
      });
      details.appendChild(dl);
      [["Eingehende Übergänge", "target", "sourceName"], ["Ausgehende Übergänge", "source", "targetName"]].forEach(function (spec) {
        var list = data.edges.filter(function (e) { return e[spec[1]] === id; })
          .sort(function (a, b) { return b.count - a.count; });
        details.appendChild(text("h4", spec[0] + " (" + list.length + ")"));
        var ul = document.createElement("ul");
        list.forEach(function (e) {
          var line = e[spec[2]] + ": " + e.count + "-mal";
          if (e.median) { line += ", Median " + e.median + ", P90 " + e.p90; }
          ul.appendChild(text("li", line));
        });
        details.appendChild(ul);
      });
    }

    function select(id) {
      selected = (selected === id) ? null : id;
      svg.classList.toggle("pm-has-selection", selected !== null);
      nodes.forEach(function (el) {
        var on = selected !== null && parseInt(el.getAttribute("data-node"), 10) === selected;
        el.classList.toggle("pm-selected", on);
        el.setAttribute("aria-pressed", on ? "true" : "false");
      });
      edges.forEach(function (e) {
        var hit = selected !== null && (parseInt(e.getAttribute("data-source"), 10) === selected ||
          parseInt(e.getAttribute("data-target"), 10) === selected);
        e.classList.toggle("pm-highlight", hit);
      });
      showDetails(selected);
    }

    nodes.forEach(function (el) {
      var id = parseInt(el.getAttribute("data-node"), 10);
      el.addEventListener("click", function () { select(id); });
      el.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(id); }
        if (ev.key === "Escape" && selected !== null) { ev.preventDefault(); select(selected); }
      });
    });
    if (slider) {
      slider.max = String(counts.length - 1);
      slider.addEventListener("input", applyFilter);
      slider.hidden = false;
      root.querySelector(".pm-slider-field").hidden = false;
    }
    applyFilter();
    showDetails(null);
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-map-data]"), setup);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
