// The sync page, kept fresh: poll sync.json every few seconds and redraw the peers and the
// review queue's counts. Helpers, polling and the confirm step are common.js's. Text goes
// in with textContent only, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("sync");
  if (!root) return;
  var csrf = root.dataset.csrf;
  var el = CaseBridge.el, cell = CaseBridge.cell, duration = CaseBridge.duration;

  function $(id) { return document.getElementById(id); }

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
    return p.dead ? [CaseBridge.postForm(p.retry_url, csrf, "Retry " + p.dead)] : ["–"];
  }

  function reviews(r) {
    $("review-open").textContent = r.open;
    document.querySelectorAll("[data-review-kind]").forEach(function (count) {
      count.textContent = r.by_kind[count.dataset.reviewKind] || 0;
    });
  }

  function render(d) {
    $("as-of").textContent = "As of " + d.as_of;
    $("pending-total").textContent = d.pending_total;
    $("dead-total").textContent = d.dead_total;
    $("peers-total").textContent = d.peers.length + " peer(s)";
    $("registry-bad").hidden = d.registry_ok;
    reviews(d.review);
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

  CaseBridge.poll(root.dataset.jsonUrl, root.dataset.pollSeconds, render, function (text) {
    $("as-of").textContent = text;
  });
})();
