// The queue page, kept fresh: poll queue.json every few seconds and redraw what changed.
// Helpers, polling and the confirm step are common.js's. Text goes in with textContent
// only, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("queue");
  if (!root) return;
  var url = root.dataset.jsonUrl;
  var csrf = root.dataset.csrf;
  var shown = {};  // section -> the JSON last drawn, so unchanged rows are left alone
  var SVG = "http://www.w3.org/2000/svg";
  var el = CaseBridge.el, cell = CaseBridge.cell, duration = CaseBridge.duration;

  function $(id) { return document.getElementById(id); }

  function emptyRow(columns, text, cls) {
    return el("tr", {}, [el("td", {colspan: String(columns), "class": cls || "muted"}, [text])]);
  }

  function fill(id, rows) {
    var body = $(id);
    body.replaceChildren.apply(body, rows);
  }

  function changed(section, value) {
    var text = JSON.stringify(value);
    if (shown[section] === text) return false;
    shown[section] = text;
    return true;
  }

  function label(state) { return state.replace(/_/g, " "); }

  function postForm(action, text, cls, confirmText) {
    return CaseBridge.postForm(action, csrf, text, cls, confirmText);
  }

  var draw = {
    summary: function (d) {
      var oldest = d.oldest_waiting;
      $("oldest-waiting").textContent = oldest ? duration(oldest.age_seconds) : "none";
      $("oldest-waiting-detail").textContent = oldest
        ? "#" + oldest.submission_id + " · " + oldest.xml_form_id + " · " + oldest.state
        : "nothing waits";
      $("last-hour").textContent = d.per_minute_total;
      $("failed-total").textContent = d.failed_total;
      $("workers-total").textContent = d.workers.length;
      $("redis-down").hidden = d.redis_ok;
    },
    chart: function (d) {
      var minutes = d.per_minute, peak = d.per_minute_max, width = minutes.length * 10;
      var svg = document.querySelector("#chart svg");
      svg.setAttribute("viewBox", "0 0 " + width + " 100");
      svg.querySelectorAll("rect").forEach(function (bar) { bar.remove(); });
      svg.querySelector("title").textContent = "Submissions per minute over the last hour: " +
        d.per_minute_total + " in all, at most " + peak + " in a minute";
      minutes.forEach(function (m, i) {
        if (!m.count) return;
        var h = Math.max(m.count / peak * 96, 2);
        var bar = document.createElementNS(SVG, "rect");
        [["class", "bar"], ["x", i * 10 + 1], ["y", 100 - h], ["width", 8], ["height", h]]
          .forEach(function (a) { bar.setAttribute(a[0], a[1]); });
        var tip = document.createElementNS(SVG, "title");
        tip.textContent = m.minute + ": " + m.count;
        bar.appendChild(tip);
        svg.appendChild(bar);
      });
      if (minutes.length) {
        $("chart-start").textContent = minutes[0].minute;
        $("chart-end").textContent = minutes[minutes.length - 1].minute;
      }
      $("chart-peak").textContent = "peak " + peak + "/min";
    },
    queues: function (d) {
      fill("queues", d.queues.length ? d.queues.map(function (q) {
        return el("tr", {}, [cell("Queue", q.name), cell("Waiting", q.waiting),
          cell("Running", q.running), cell("Retry scheduled", q.scheduled),
          cell("Failed jobs", q.failed)]);
      }) : [emptyRow(5, "Queue status unavailable.")]);
    },
    workers: function (d) {
      fill("workers", d.workers.length ? d.workers.map(function (w) {
        var beat = w.seconds_since_heartbeat === null ? "–" : duration(w.seconds_since_heartbeat) + " ago";
        return el("tr", {}, [cell("Worker", w.name),
          cell("State", [el("span", {"class": "badge state-" + w.state}, [w.state])]),
          cell("Queues", w.queues.join(", ")), cell("Current job", w.current_job || "–"),
          cell("Heartbeat", beat)]);
      }) : [emptyRow(5, "No worker is running: submissions wait until one starts.", "bad")]);
    },
    by_form: function (d) {
      fill("by-form", d.by_form.length ? d.by_form.map(function (f) {
        var name = el("div", {}, [f.xml_form_id, el("div", {"class": "muted"}, [f.project_name])]);
        var cells = [cell("Form", [name])];
        d.states.forEach(function (s) {
          cells.push(cell(label(s), f.counts[s] || 0, {"data-state": s}));
        });
        cells.push(cell("Total", f.total));
        return el("tr", {}, cells);
      }) : [emptyRow(d.states.length + 2, "No submissions yet.")]);
    },
    failed: function (d) {
      fill("failed", d.failed.length ? d.failed.map(function (s) {
        return el("tr", {"data-submission": String(s.submission_id)}, [
          cell("Submission", "#" + s.submission_id), cell("Form", s.xml_form_id),
          cell("Received", s.received_at), cell("Error", s.problem || "–"),
          cell("Action", [postForm(s.retry_url, "Retry"),
            postForm(s.discard_url, "Discard", "danger",
              "Discard submission #" + s.submission_id + "? It is kept, but never processed.")],
            {"class": "actions"})]);
      }) : [emptyRow(5, "No failed submissions.")]);
      more("failed-more", d.failed.length, d.failed_total);
    },
    needs_review: function (d) {
      fill("needs-review", d.needs_review.length ? d.needs_review.map(function (s) {
        return el("tr", {}, [cell("Submission", "#" + s.submission_id), cell("Form", s.xml_form_id),
          cell("Received", s.received_at), cell("Fields", s.problem_fields.join(", ") || "–")]);
      }) : [emptyRow(4, "Nothing needs review.")]);
      more("review-more", d.needs_review.length, d.needs_review_total);
    },
  };

  function more(id, count, total) {
    var note = $(id);
    note.hidden = total <= count;
    note.textContent = "Showing the newest " + count + " of " + total + ".";
  }

  var parts = {
    summary: ["oldest_waiting", "per_minute_total", "failed_total", "workers", "redis_ok"],
    chart: ["per_minute"], queues: ["queues"], workers: ["workers"],
    by_form: ["by_form"], failed: ["failed", "failed_total"],
    needs_review: ["needs_review", "needs_review_total"],
  };

  function render(data) {
    Object.keys(parts).forEach(function (section) {
      var slice = parts[section].map(function (key) { return data[key]; });
      if (changed(section, slice)) draw[section](data);
    });
    $("as-of").textContent = "As of " + data.as_of;
  }

  function say(text) { $("as-of").textContent = text; }

  CaseBridge.poll(url, root.dataset.pollSeconds, render, say);
})();
