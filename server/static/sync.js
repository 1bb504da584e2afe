// The sync page, kept fresh: poll sync.json every few seconds and redraw the peers.
// A static file (no inline script under the Content-Security-Policy); text goes in with
// textContent only, never as HTML. The helpers follow queue.js.
(function () {
  "use strict";
  var root = document.getElementById("sync");
  if (!root) return;
  var url = root.dataset.jsonUrl;
  var every = Math.max(1, Number(root.dataset.pollSeconds) || 5) * 1000;
  var csrf = root.dataset.csrf;
  var timer = null;
  var stopped = false;

  function $(id) { return document.getElementById(id); }

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

  function ago(at, seconds) {
    if (!at) return ["never"];
    return [el("div", {}, [duration(seconds) + " ago", el("div", {"class": "muted"}, [at + " UTC"])])];
  }

  function fill(id, rows, columns, empty) {
    var body = $(id);
    if (!rows.length) rows = [el("tr", {}, [el("td", {colspan: String(columns), "class": "muted"}, [empty])])];
    body.replaceChildren.apply(body, rows);
  }

  function retry(p) {
    if (!p.dead) return ["–"];
    return [el("form", {method: "post", action: p.retry_url, "class": "inline"}, [
      el("input", {type: "hidden", name: "csrf_token", value: csrf}),
      el("button", {type: "submit"}, ["Retry " + p.dead]),
    ])];
  }

  function render(d) {
    $("as-of").textContent = "As of " + d.as_of;
    $("pending-total").textContent = d.pending_total;
    $("dead-total").textContent = d.dead_total;
    $("peers-total").textContent = d.peers.length + " peer(s)";
    $("registry-bad").hidden = d.registry_ok;
    fill("peers", d.peers.map(function (p) {
      var name = el("div", {}, [p.code, el("div", {"class": "muted"}, [p.registered ? p.name : "not in the registry"])]);
      return el("tr", {"data-peer": p.code}, [
        cell("Mission", [name]),
        cell("Last delivered", ago(p.last_delivered_at, p.last_delivered_seconds)),
        cell("Lag", p.lag_seconds === null ? "none" : duration(p.lag_seconds)),
        cell("Pending", p.pending),
        cell("Dead", p.dead, p.dead ? {"class": "bad"} : {}),
        cell("Last error", p.last_error || "–"),
        cell("Action", retry(p), {"class": "actions"})]);
    }), 7, "No linked missions (casebridge missions add).");
    fill("incoming", d.peers.map(function (p) {
      return el("tr", {}, [cell("Mission", p.code), cell("Received", p.received),
        cell("Last received", ago(p.last_received_at, p.last_received_seconds))]);
    }), 3, "Nothing received yet.");
  }

  function poll() {
    timer = null;
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.redirected || response.status === 401 || response.status === 403 || !json) {
          stopped = true;
          $("as-of").textContent = "Your session ended: reload the page to log in again.";
          return;
        }
        if (!response.ok) throw new Error(String(response.status));
        return response.json().then(render);
      })
      .catch(function () { $("as-of").textContent = "Could not refresh (offline?); trying again."; })
      .then(schedule);
  }

  function schedule() {
    if (!stopped && !document.hidden && timer === null) timer = setTimeout(poll, every);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { clearTimeout(timer); timer = null; } else { poll(); }
  });

  schedule();
})();
