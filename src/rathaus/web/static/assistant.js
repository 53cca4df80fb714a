// Bürgerassistent page: answers stream in through the JSON API (fetch + NDJSON), feedback and
// hand-over without a page reload. Progressive enhancement only: without JavaScript the same
// forms are posted and answered by the server. Text from the network is only ever inserted as
// text (textContent), never as HTML.
(function () {
  "use strict";
  var root = document.querySelector("[data-assistant]");
  if (!root) { return; }
  var focusTarget = document.querySelector("[data-focus]");
  if (focusTarget) { focusTarget.focus(); }
  if (!window.fetch || !window.ReadableStream || !window.TextDecoder) { return; }

  var API = "/api/v1/assistant/";
  var form = document.getElementById("frage-form");
  var input = document.getElementById("frage");
  var easy = document.getElementById("leichte-sprache");
  var list = document.getElementById("verlauf");
  var errorBox = document.getElementById("fehler");
  var notice = document.getElementById("meldung");
  var more = document.querySelector("[data-more]");
  var handover = document.getElementById("weitergabe");
  var submit = form.querySelector("button[type=submit]");
  var kommune = root.getAttribute("data-kommune");
  var channel = root.getAttribute("data-channel");
  var maxChars = parseInt(root.getAttribute("data-max") || "1000", 10);
  var counter = 0;
  var busy = false;
  var ABSTAIN_MESSAGE = "Dazu habe ich keine gesicherte Antwort gefunden. Eine Mitarbeiterin " +
    "oder ein Mitarbeiter hilft Ihnen gern weiter.";
  var OFFLINE = "Die Verbindung zum Server ist unterbrochen. Bitte prüfen Sie Ihre " +
    "Internetverbindung und versuchen Sie es erneut.";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function safeUrl(url) {
    url = String(url || "").trim();
    if (/^https?:\/\//i.test(url) || (url.charAt(0) === "/" && url.charAt(1) !== "/")) { return url; }
    return "";
  }

  function link(href, text, external) {
    var a = el("a", null, text);
    a.href = href;
    if (external) {
      a.target = "_blank";
      a.rel = "noopener";
      a.appendChild(el("span", "visually-hidden", " (öffnet in neuem Fenster)"));
    }
    return a;
  }

  function conversationId() {
    var field = form.querySelector("[data-conversation]");
    return field ? field.value : "";
  }

  function setConversation(id) {
    document.querySelectorAll("[data-conversation]").forEach(function (field) { field.value = id; });
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  async function postJson(path, body) {
    var response = await fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit"
    });
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    return { ok: response.ok, status: response.status, data: data };
  }

  // -- one turn: the question and the answer as it arrives --------------------------------------

  function newTurn(question) {
    counter += 1;
    var key = "k" + counter;
    var li = el("li", "turn");
    var q = el("div", "question");
    q.appendChild(el("p", "who", "Ihre Frage"));
    q.appendChild(el("p", "question-text", question));
    li.appendChild(q);
    var article = el("article", "answer");
    article.setAttribute("aria-label", "Antwort des KI-Assistenten");
    article.setAttribute("aria-busy", "true");
    article.tabIndex = -1;
    article.appendChild(el("p", "who", "Antwort des KI-Assistenten"));
    var sentences = el("p", "sentences");
    var facts = el("div");
    var notes = el("div");
    var sources = el("div");
    var tail = el("div");
    [sentences, facts, notes, sources, tail].forEach(function (part) { article.appendChild(part); });
    li.appendChild(article);
    return { key: key, li: li, article: article, sentences: sentences, facts: facts,
      notes: notes, sources: sources, tail: tail };
  }

  function addSentence(turn, sentence) {
    if (turn.pending) { renderSources(turn, turn.pending); turn.pending = null; }
    var span = el("span", "sentence", sentence.text);
    // A translated sentence is marked with its language, so a screen reader reads it right.
    if (sentence.original && sentence.language) { span.lang = sentence.language; }
    (sentence.sources || []).forEach(function (n) {
      var cite = link("#quelle-" + turn.key + "-" + n, "[" + n + "]");
      cite.className = "cite";
      cite.setAttribute("aria-label", "Quelle " + n);
      span.appendChild(cite);
    });
    turn.sentences.appendChild(span);
    turn.sentences.appendChild(document.createTextNode(" "));
  }

  function renderSources(turn, sources) {
    turn.sources.textContent = "";
    if (!sources || !sources.length) { return; }
    turn.sources.appendChild(el("h3", "sources-heading", "Quellen"));
    var ol = el("ol", "sources");
    sources.forEach(function (s) {
      var li = el("li");
      li.id = "quelle-" + turn.key + "-" + s.n;
      li.value = s.n;
      var url = safeUrl(s.url);
      li.appendChild(url ? link(url, s.title, true) : document.createTextNode(s.title));
      if (s.passage) {
        var details = el("details");
        details.appendChild(el("summary", null, "Auszug"));
        details.appendChild(el("p", null, s.passage));
        li.appendChild(details);
      }
      ol.appendChild(li);
    });
    turn.sources.appendChild(ol);
  }

  function factItem(key, value) {
    if (value && typeof value === "object") {
      var href = safeUrl(value.url);
      return href ? link(href, value.title || value.url) : document.createTextNode(value.title || "");
    }
    var text = String(value);
    if (key === "online_url" || key === "appointment_url") {
      var url = safeUrl(text);
      if (url) { return link(url, text); }
    } else if (key === "email" && text.indexOf("@") > 0) {
      return link("mailto:" + text, text);
    } else if (key === "phone") {
      return link("tel:" + text.replace(/[^0-9+]/g, ""), text);
    }
    return document.createTextNode(text);
  }

  function renderFacts(turn, facts) {
    turn.facts.textContent = "";
    if (!facts || !facts.length) { return; }
    turn.facts.appendChild(el("h3", "facts-heading", "Das Wichtigste auf einen Blick"));
    var dl = el("dl", "facts");
    facts.forEach(function (f) {
      var dt = el("dt", null, f.label || f.key);
      if (f.label_local) {  // the label in the question's language, read in that language
        var local = el("span", "label-local", " · " + f.label_local);
        local.lang = f.language;
        dt.appendChild(local);
      }
      dl.appendChild(dt);
      var dd = el("dd");
      var values = Array.isArray(f.value) ? f.value : (f.value ? [f.value] : []);
      // a bare address that is also a named link is shown once, by its name
      var linked = (f.links || []).map(function (l) { return safeUrl(l.url); }).filter(Boolean);
      values = values.filter(function (v) {
        return typeof v !== "string" || linked.indexOf(safeUrl(v)) < 0;
      });
      if (values.length > 1) {
        var ul = el("ul");
        values.forEach(function (v) { var li = el("li"); li.appendChild(factItem(f.key, v)); ul.appendChild(li); });
        dd.appendChild(ul);
      } else if (values.length) {
        dd.appendChild(factItem(f.key, values[0]));
      }
      (f.links || []).forEach(function (l) {
        var href = safeUrl(l.url);
        if (href) { dd.appendChild(document.createTextNode(" ")); dd.appendChild(link(href, l.title || l.url)); }
      });
      dl.appendChild(dd);
    });
    turn.facts.appendChild(dl);
  }

  function renderAbstention(turn, answer) {
    turn.sentences.textContent = "";
    turn.sources.textContent = "";
    turn.facts.textContent = "";
    turn.article.classList.add("abstained");
    var box = el("div", "abstain");
    // The first note is the answer's own message (in the language it answered in).
    var message = (answer.notes && answer.notes.length) ? answer.notes[0] : ABSTAIN_MESSAGE;
    var p = el("p");
    p.appendChild(el("strong", null, message));
    box.appendChild(p);
    var h = answer.handover || {};
    var ul = el("ul", "contact");
    if (h.office) { ul.appendChild(el("li", null, h.office)); }
    if (h.phone) {
      var phone = el("li", null, "Telefon: ");
      phone.appendChild(link("tel:" + String(h.phone).replace(/[^0-9+]/g, ""), h.phone));
      ul.appendChild(phone);
    }
    if (h.email) {
      var mail = el("li", null, "E-Mail: ");
      mail.appendChild(link("mailto:" + h.email, h.email));
      ul.appendChild(mail);
    }
    if (ul.children.length) { box.appendChild(ul); }
    if (answer.sources && answer.sources.length) {
      box.appendChild(el("p", "suggest", "Vielleicht helfen Ihnen diese Seiten weiter:"));
      var pages = el("ul", "suggestions");
      answer.sources.forEach(function (s) {
        var li = el("li");
        var url = safeUrl(s.url);
        li.appendChild(url ? link(url, s.title, true) : document.createTextNode(s.title));
        pages.appendChild(li);
      });
      box.appendChild(pages);
    }
    if (h.case_offer !== false && handover && handover.querySelector("form")) {
      var offer = el("p");
      var open = link("#weitergabe", "Anliegen an die Verwaltung weitergeben");
      open.className = "button";
      open.setAttribute("data-open-handover", "");
      offer.appendChild(open);
      box.appendChild(offer);
    }
    turn.sentences.replaceWith(box);
    turn.sentences = box;
  }

  function renderNotes(turn, notes) {
    turn.notes.textContent = "";
    if (!notes || !notes.length) { return; }
    var ul = el("ul", "notes");
    notes.forEach(function (n) { ul.appendChild(el("li", null, n)); });
    turn.notes.appendChild(ul);
  }

  // The checked German sentences behind a translated answer: they are authoritative.
  function renderGermanWording(turn, sentences) {
    if (!sentences.some(function (s) { return s.original; })) { return; }
    var details = el("details", "german-wording");
    details.appendChild(el("summary", null, "Deutscher Wortlaut (maßgeblich)"));
    var p = el("p", null, sentences.map(function (s) { return s.original || s.text; }).join(" "));
    p.lang = "de";
    details.appendChild(p);
    turn.sentences.parentNode.insertBefore(details, turn.sentences.nextSibling);
  }

  function thumb(className) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", className);
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M2 10h4v11H2zM8 21h9.5a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 19 10h-5.5l.9-4.3A1.8 1.8 0 0 0 12.7 3.5L8 9z");
    svg.appendChild(path);
    return svg;
  }

  function feedbackForm(turnId) {
    var f = el("form", "feedback");
    f.method = "post";
    f.action = "/assistent/rueckmeldung";
    f.setAttribute("data-feedback", "");
    [["conversation_id", conversationId()], ["turn_id", turnId], ["kommune", kommune],
      ["ansicht", channel === "widget" ? "einbetten" : "seite"]].forEach(function (pair) {
      var hidden = el("input");
      hidden.type = "hidden";
      hidden.name = pair[0];
      hidden.value = pair[1];
      f.appendChild(hidden);
    });
    var fs = el("fieldset");
    fs.appendChild(el("legend", null, "War diese Antwort hilfreich?"));
    [["1", "thumb", " Ja, hilfreich"], ["-1", "thumb down", " Nein, nicht hilfreich"]].forEach(function (b) {
      var button = el("button");
      button.type = "submit";
      button.name = "value";
      button.value = b[0];
      button.setAttribute("aria-pressed", "false");
      button.appendChild(thumb(b[1]));
      button.appendChild(document.createTextNode(b[2]));
      fs.appendChild(button);
    });
    var details = el("details", "comment");
    details.appendChild(el("summary", null, "Kommentar hinzufügen (freiwillig)"));
    var label = el("label", null, "Ihr Kommentar – bitte ohne persönliche Daten");
    label.htmlFor = "kommentar-" + turnId;
    var area = el("textarea");
    area.id = "kommentar-" + turnId;
    area.name = "comment";
    area.rows = 2;
    area.maxLength = 2000;
    details.appendChild(label);
    details.appendChild(area);
    details.appendChild(el("p", "hint",
      "Wählen Sie danach „Ja, hilfreich“ oder „Nein, nicht hilfreich“, um den Kommentar zu senden."));
    fs.appendChild(details);
    var status = el("p", "feedback-status");
    status.setAttribute("role", "status");
    fs.appendChild(status);
    f.appendChild(fs);
    return f;
  }

  function finish(turn, event) {
    var answer = event.answer;
    turn.li.id = "antwort-" + event.turn_id;
    setConversation(event.conversation_id);
    var notes = answer.notes || [];
    if (answer.abstained) {
      renderAbstention(turn, answer);
      notes = notes.slice(1);
    } else {
      if (!turn.sentences.childNodes.length) {
        (answer.sentences || []).forEach(function (s) { addSentence(turn, s); });
      }
      renderFacts(turn, answer.facts);
      renderSources(turn, answer.sources);
    }
    renderNotes(turn, notes);
    renderGermanWording(turn, answer.abstained ? [] : (answer.sentences || []));
    turn.tail.appendChild(feedbackForm(event.turn_id));
    if (more && handover && handover.querySelector("form") && handover.hidden) { more.hidden = false; }
  }

  function handle(turn, event) {
    if (event.event === "conversation") {
      setConversation(event.conversation_id);
    } else if (event.event === "sources") {
      turn.pending = event.sources;  // shown with the first sentence (none when it abstains)
    } else if (event.event === "sentence") {
      addSentence(turn, event.sentence);
    } else if (event.event === "facts") {
      renderFacts(turn, event.facts);
    } else if (event.event === "done") {
      finish(turn, event);
      return true;
    } else if (event.event === "error") {
      var alert = el("p", "error", event.detail);
      alert.setAttribute("role", "alert");
      turn.tail.appendChild(alert);
      return true;
    }
    return false;
  }

  async function ask(question) {
    var turn = newTurn(question);
    var response;
    try {
      response = await fetch(API + "ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/x-ndjson" },
        body: JSON.stringify({
          question: question, conversation_id: conversationId() || null,
          easy_language: !!(easy && easy.checked), stream: true, kommune: kommune, channel: channel
        }),
        credentials: "omit"
      });
    } catch (e) {
      showError(OFFLINE);
      return false;
    }
    if (!response.ok || !response.body) {
      var data = {};
      try { data = await response.json(); } catch (e) { data = {}; }
      showError(data.detail || "Die Frage konnte nicht beantwortet werden. Bitte versuchen Sie es erneut.");
      return false;
    }
    list.appendChild(turn.li);
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var ended = false;
    try {
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) { break; }
        buffer += decoder.decode(chunk.value, { stream: true });
        var nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          var line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line) { ended = handle(turn, JSON.parse(line)) || ended; }
        }
      }
      if (buffer.trim()) { ended = handle(turn, JSON.parse(buffer)) || ended; }
    } catch (e) {
      ended = false;
    }
    turn.article.setAttribute("aria-busy", "false");
    if (!ended) {
      handle(turn, { event: "error", detail: OFFLINE });
    }
    return true;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy) { return; }
    var question = input.value.trim();
    if (!question) {
      showError("Bitte geben Sie eine Frage ein.");
      input.focus();
      return;
    }
    if (question.length > maxChars) {
      showError("Ihre Frage ist zu lang (höchstens " + maxChars + " Zeichen). Bitte kürzen Sie sie.");
      input.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    showError("");
    notice.textContent = "Der Assistent sucht eine Antwort …";
    try {
      if (await ask(question)) { input.value = ""; }
    } finally {
      busy = false;
      submit.disabled = false;
      notice.textContent = "";
      input.focus();
    }
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.dispatchEvent(new Event("submit", { cancelable: true })); }
    }
  });

  // -- feedback, hand-over (delegated: server-rendered and streamed turns alike) ----------------

  document.addEventListener("submit", async function (event) {
    var target = event.target;
    if (target.matches("form[data-feedback]")) {
      event.preventDefault();
      var button = event.submitter;
      if (!button || !button.value) { return; }
      var status = target.querySelector(".feedback-status");
      var result;
      try {
        result = await postJson("feedback", {
          conversation_id: target.elements.conversation_id.value,
          turn_id: parseInt(target.elements.turn_id.value, 10),
          value: parseInt(button.value, 10),
          comment: target.elements.comment ? target.elements.comment.value : "",
          kommune: kommune
        });
      } catch (e) {
        status.textContent = OFFLINE;
        return;
      }
      if (result.ok) {
        target.querySelectorAll("button[name=value]").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      }
      status.textContent = result.data.message || result.data.detail || "";
    } else if (target.matches("form[data-handover]")) {
      event.preventDefault();
      var error = target.querySelector("[data-handover-error]");
      var done = handover.querySelector("[data-handover-status]");
      var els = target.elements;
      var reply;
      try {
        reply = await postJson("handover", {
          conversation_id: els.conversation_id.value,
          consent: els.consent.checked,
          name: els.name.value, email: els.email.value, phone: els.phone.value,
          message: els.message.value, kommune: kommune
        });
      } catch (e) {
        error.textContent = OFFLINE;
        error.hidden = false;
        return;
      }
      if (!reply.ok) {
        error.textContent = reply.data.detail || "Die Weitergabe ist nicht gelungen. Bitte versuchen Sie es erneut.";
        error.hidden = false;
        return;
      }
      target.remove();
      document.querySelectorAll("[data-open-handover]").forEach(function (a) { a.hidden = true; });
      if (more) { more.hidden = true; }
      done.textContent = reply.data.message;
      done.tabIndex = -1;
      done.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-open-handover]");
    if (!opener || !handover) { return; }
    event.preventDefault();
    handover.hidden = false;
    if (more) { more.hidden = true; }
    var heading = document.getElementById("weitergabe-h");
    heading.focus();
    heading.scrollIntoView({ block: "start" });
  });

  // The widget asks the embedded page to put the cursor into the question field.
  window.addEventListener("message", function (event) {
    if (event.data === "rathaus-assistent:fokus") { input.focus(); }
  });
  // In the widget's frame, Escape closes the widget (the host page cannot see keys in here).
  if (window.parent !== window) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { window.parent.postMessage("rathaus-assistent:schliessen", "*"); }
    });
  }
})();
