// Shared by every page (base.html loads it first): the confirm step of forms marked
// data-confirm, and what the live pages' scripts (queue.js, sync.js) have in common: DOM
// helpers and polling a JSON URL. A static file, so the Content-Security-Policy needs no
// 'unsafe-inline'. Text goes in with textContent only, never as HTML.
var CaseBridge = (function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function cell(label, content, attrs) {
    var a = Object.assign({"data-label": label}, attrs || {});
    return el("td", a, Array.isArray(content) ? content : [String(content)]);
  }

  function duration(seconds) {  // as the `duration` template filter
    var m = Math.floor(seconds / 60), s = seconds % 60, h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (d) return d + " d " + (h % 24) + " h";
    if (h) return h + " h " + (m % 60) + " min";
    if (m) return m + " min " + s + " s";
    return s + " s";
  }

  function postForm(action, csrf, text, cls, confirmText) {
    var attrs = {method: "post", action: action, "class": "inline"};
    if (confirmText) attrs["data-confirm"] = confirmText;
    return el("form", attrs, [
      el("input", {type: "hidden", name: "csrf_token", value: csrf}),
      el("button", cls ? {type: "submit", "class": cls} : {type: "submit"}, [text]),
    ]);
  }

  // Fetch `url` every `seconds` while the tab is shown and hand the JSON to render(data);
  // say(text) reports a lost session (polling stops) or a failed fetch (it goes on).
  function poll(url, seconds, render, say) {
    var every = Math.max(1, Number(seconds) || 5) * 1000;
    var timer = null;
    var stopped = false;

    function tick() {
      timer = null;
      fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
          if (response.redirected || response.status === 401 || response.status === 403 || !json) {
            stopped = true;
            say("Your session ended: reload the page to log in again.");
            return;
          }
          if (!response.ok) throw new Error(String(response.status));
          return response.json().then(render);
        })
        .catch(function () { say("Could not refresh (offline?); trying again."); })
        .then(schedule);
    }

    function schedule() {
      if (!stopped && !document.hidden && timer === null) timer = setTimeout(tick, every);
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { clearTimeout(timer); timer = null; } else { tick(); }
    });
    schedule();
  }

  // <form data-confirm="Question?">: asked before it is sent; Cancel sends nothing.
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  return {el: el, cell: cell, duration: duration, postForm: postForm, poll: poll};
})();
