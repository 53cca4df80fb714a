// Bürgerassistent widget for a municipality's own website. One script tag is all it takes:
//   <script src="https://rathaus.example.de/assistent/widget.js" data-kommune="musterstadt" defer></script>
// It adds a button; the button opens the assistant (/assistent/einbetten of the same server) in
// a frame. Nothing else is loaded, no cookies are set, and the host page's content is never
// read. Styles are set on the elements themselves, so a strict style-src on the host page does
// not break the widget. Optional attributes: data-label (button text).
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector("script[src*='/assistent/widget.js']");
  if (!script || window.rathausAssistentWidget) { return; }
  window.rathausAssistentWidget = true;

  var origin = new URL(script.src, window.location.href).origin;
  var kommune = script.getAttribute("data-kommune") || "";
  var label = script.getAttribute("data-label") || "Fragen? Bürgerassistent";
  var src = origin + "/assistent/einbetten" + (kommune ? "?kommune=" + encodeURIComponent(kommune) : "");
  var BRAND = "#0b4f6c";
  var FOCUS = "3px solid #ffbf47";
  var TOP = "2147483000";

  function css(node, rules) {
    Object.keys(rules).forEach(function (name) { node.style[name] = rules[name]; });
    return node;
  }

  function focusRing(node) {
    node.addEventListener("focus", function () { css(node, { outline: FOCUS, outlineOffset: "2px" }); });
    node.addEventListener("blur", function () { css(node, { outline: "none" }); });
  }

  function start() {
    var button = css(document.createElement("button"), {
      position: "fixed", right: "1rem", bottom: "1rem", zIndex: TOP, margin: "0",
      padding: ".75rem 1.25rem", minHeight: "44px", border: "2px solid #fff", borderRadius: "2rem",
      background: BRAND, color: "#fff", font: "600 1rem/1.2 system-ui, sans-serif",
      boxShadow: "0 2px 8px rgba(0,0,0,.35)", cursor: "pointer"
    });
    button.type = "button";
    button.textContent = label;
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", "rathaus-assistent");
    button.setAttribute("data-rathaus-assistent", "");
    focusRing(button);

    var panel = css(document.createElement("div"), {
      position: "fixed", zIndex: TOP, display: "none", flexDirection: "column", background: "#fff",
      border: "1px solid #6b6b6b", borderRadius: "8px", boxShadow: "0 4px 24px rgba(0,0,0,.35)",
      overflow: "hidden", color: "#1b1b1b"
    });
    panel.id = "rathaus-assistent";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Bürgerassistent (KI-Assistent)");

    var bar = css(document.createElement("div"), {
      display: "flex", alignItems: "center", justifyContent: "space-between", gap: ".5rem",
      padding: ".4rem .5rem .4rem .9rem", background: BRAND, color: "#fff",
      font: "600 1rem/1.2 system-ui, sans-serif"
    });
    var title = document.createElement("span");
    title.textContent = "Bürgerassistent";
    var close = css(document.createElement("button"), {
      margin: "0", padding: ".4rem .8rem", minHeight: "44px", border: "2px solid #fff",
      borderRadius: "4px", background: "transparent", color: "#fff",
      font: "600 .95rem/1 system-ui, sans-serif", cursor: "pointer"
    });
    close.type = "button";
    close.textContent = "Schließen";
    close.setAttribute("aria-label", "Bürgerassistent schließen");
    focusRing(close);
    bar.appendChild(title);
    bar.appendChild(close);
    panel.appendChild(bar);

    var frame = null;

    function layout() {
      var phone = window.matchMedia && window.matchMedia("(max-width: 40rem)").matches;
      css(panel, phone
        ? { left: "0", right: "0", top: "0", bottom: "0", width: "100%", height: "100%", borderRadius: "0" }
        : { left: "auto", top: "auto", right: "1rem", bottom: "5rem", borderRadius: "8px",
            width: "min(26rem, calc(100vw - 2rem))", height: "min(40rem, calc(100vh - 7rem))" });
    }

    function focusFrame() {
      if (!frame) { return; }
      frame.focus();
      try { frame.contentWindow.postMessage("rathaus-assistent:fokus", origin); } catch (e) { /* not loaded yet */ }
    }

    function open() {
      if (!frame) {
        frame = css(document.createElement("iframe"), { border: "0", width: "100%", flex: "1 1 auto" });
        frame.title = "Bürgerassistent – Auskunft durch einen KI-Assistenten";
        frame.src = src;
        frame.addEventListener("load", focusFrame);
        panel.appendChild(frame);
      }
      layout();
      css(panel, { display: "flex" });
      button.setAttribute("aria-expanded", "true");
      focusFrame();
    }

    function shut() {
      css(panel, { display: "none" });
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }

    button.addEventListener("click", function () {
      if (panel.style.display === "none") { open(); } else { shut(); }
    });
    close.addEventListener("click", shut);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { shut(); }
    });
    window.addEventListener("message", function (event) {
      if (frame && event.origin === origin && event.source === frame.contentWindow &&
          event.data === "rathaus-assistent:schliessen") { shut(); }
    });
    window.addEventListener("resize", function () { if (panel.style.display !== "none") { layout(); } });

    document.body.appendChild(panel);
    document.body.appendChild(button);
  }

  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
