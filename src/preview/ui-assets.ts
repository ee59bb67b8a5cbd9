/**
 * The web UI: one page, one stylesheet, one script, no framework. The script builds every
 * element with createElement and textContent (never innerHTML with message data), so
 * nothing from a message is ever parsed as markup in the page itself; message HTML is only
 * shown inside the sandboxed frame served from its own route.
 */

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const PAGE_HTML = (title: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<header>
  <h1>${escapeHtml(title)}</h1>
  <span id="count" class="muted"></span>
  <span id="status" class="status" data-state="connecting">connecting</span>
  <span class="spacer"></span>
  <span id="smtp" class="muted"></span>
  <button id="clear" type="button">Delete all</button>
</header>
<main>
  <nav id="list" aria-label="Messages"></nav>
  <section id="view" aria-live="polite"><p class="empty">Select a message.</p></section>
</main>
<script src="/assets/app.js"></script>
</body>
</html>
`;

export const APP_CSS = `
:root { --fg: #1d2330; --muted: #6b7385; --line: #dde1e8; --bg: #f6f7f9; --accent: #2456d3; --err: #b3261e; --warn: #9a6700; --info: #2456d3; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; display: flex; flex-direction: column; background: var(--bg); }
header { display: flex; align-items: center; gap: 12px; padding: 8px 16px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0; }
.spacer { flex: 1; }
.muted { color: var(--muted); }
.status { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #eee; }
.status[data-state="live"] { background: #e3f4e6; color: #1b6b2a; }
.status[data-state="offline"] { background: #fbe4e2; color: var(--err); }
button { font: inherit; padding: 4px 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
button:hover { border-color: var(--accent); }
main { flex: 1; display: flex; min-height: 0; }
nav { width: 360px; min-width: 260px; overflow-y: auto; background: #fff; border-right: 1px solid var(--line); }
nav .item { display: block; width: 100%; text-align: left; border: 0; border-bottom: 1px solid var(--line); border-radius: 0; padding: 10px 14px; background: #fff; }
nav .item:hover { background: #f3f6fd; }
nav .item[aria-current="true"] { background: #e8eefc; box-shadow: inset 3px 0 var(--accent); }
nav .item.new { animation: flash 1.2s ease-out; }
@keyframes flash { from { background: #fff6cc; } to { background: #fff; } }
.item .row { display: flex; gap: 8px; }
.item .from { font-weight: 600; flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.item .time, .item .meta { color: var(--muted); font-size: 12px; white-space: nowrap; }
.item .subject { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.item .snippet { color: var(--muted); font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.empty { color: var(--muted); padding: 24px; }
section#view { flex: 1; display: flex; flex-direction: column; min-width: 0; overflow: hidden; }
.summary { background: #fff; padding: 12px 16px; border-bottom: 1px solid var(--line); }
.summary h2 { margin: 0 0 6px; font-size: 18px; word-break: break-word; }
.summary dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
.summary dt { color: var(--muted); }
.summary dd { margin: 0; word-break: break-all; }
.summary .actions { float: right; display: flex; gap: 6px; }
.tabs { display: flex; gap: 2px; padding: 0 12px; background: #fff; border-bottom: 1px solid var(--line); }
.tabs button { border: 0; border-bottom: 2px solid transparent; border-radius: 0; padding: 8px 10px; }
.tabs button[aria-selected="true"] { border-bottom-color: var(--accent); color: var(--accent); }
.badge { display: inline-block; min-width: 18px; padding: 0 5px; margin-left: 4px; border-radius: 9px; background: #eee; font-size: 11px; text-align: center; }
.badge.error { background: var(--err); color: #fff; }
.badge.warning { background: #f6d77a; }
.panel { flex: 1; overflow: auto; padding: 12px 16px; }
.panel.frame { padding: 0; display: flex; flex-direction: column; }
.notice { padding: 6px 16px; background: #fff8e1; border-bottom: 1px solid #f1e2a8; display: flex; align-items: center; gap: 10px; }
iframe { flex: 1; width: 100%; border: 0; background: #fff; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--line); }
td.name { white-space: nowrap; color: var(--muted); width: 1%; }
td.value { word-break: break-all; font-family: ui-monospace, monospace; font-size: 12.5px; }
ul.tree { list-style: none; padding-left: 18px; margin: 0; }
ul.tree li { margin: 2px 0; }
.tree .type { font-family: ui-monospace, monospace; }
.check { padding: 8px 12px; margin-bottom: 8px; border-left: 4px solid var(--info); background: #fff; }
.check.error { border-color: var(--err); }
.check.warning { border-color: #e0a100; }
.check strong { display: block; }
.attachments a { color: var(--accent); }
`;

/* The script is plain ES2020 for the browser; it is a string here so that both builds ship it. */
export const APP_JS = String.raw`"use strict";
(function () {
  var state = { messages: [], selected: null, tab: "html", info: {}, detail: null };
  var list = document.getElementById("list");
  var view = document.getElementById("view");
  var statusEl = document.getElementById("status");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "onclick") node.addEventListener("click", attrs[k]);
      else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function mailbox(m) { return m.name ? m.name + " <" + m.address + ">" : m.address; }
  function mailboxes(list) { return (list || []).map(mailbox).join(", "); }
  function size(n) { return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB"; }
  function time(iso) { var d = new Date(iso); return d.toLocaleString(); }
  function api(path, options) { return fetch(path, options).then(function (r) { if (!r.ok && r.status !== 204) throw new Error(r.status + " " + r.statusText); return r; }); }

  function setStatus(s, text) { statusEl.dataset.state = s; statusEl.textContent = text; }

  function renderList(newId) {
    list.textContent = "";
    document.getElementById("count").textContent = state.messages.length + (state.messages.length === 1 ? " message" : " messages");
    if (state.messages.length === 0) {
      list.appendChild(el("p", { "class": "empty", text: state.info.smtpPort ? "No mail yet. Send to SMTP 127.0.0.1:" + state.info.smtpPort + "." : "No messages." }));
      return;
    }
    state.messages.forEach(function (m) {
      var from = m.from.length ? (m.from[0].name || m.from[0].address) : "(no sender)";
      var item = el("button", { type: "button", "class": "item" + (m.id === newId ? " new" : ""), "data-testid": "message-item", "data-id": m.id, "aria-current": m.id === state.selected ? "true" : "false", onclick: function () { location.hash = "#" + encodeURIComponent(m.id); } }, [
        el("div", { "class": "row" }, [el("span", { "class": "from", text: from }), el("span", { "class": "time", text: new Date(m.receivedAt).toLocaleTimeString() })]),
        el("div", { "class": "subject", text: m.subject === null ? "(no subject)" : m.subject }),
        el("div", { "class": "row" }, [el("span", { "class": "snippet", text: m.snippet }), el("span", { "class": "meta", text: (m.attachments ? m.attachments + (m.attachments === 1 ? " attachment · " : " attachments · ") : "") + size(m.size) + (m.folder ? " · " + m.folder : "") })])
      ]);
      list.appendChild(item);
    });
  }

  var TABS = [["html", "HTML"], ["text", "Text"], ["headers", "Headers"], ["mime", "MIME"], ["attachments", "Attachments"], ["raw", "Raw"], ["checks", "Checks"]];

  function renderView() {
    var m = state.detail;
    view.textContent = "";
    if (!m) { view.appendChild(el("p", { "class": "empty", text: "Select a message." })); return; }
    var rows = [["From", mailboxes(m.from)], ["To", mailboxes(m.to)], ["Cc", mailboxes(m.cc)], ["Reply-To", mailboxes(m.replyTo)],
      ["Envelope", m.envelope ? (m.envelope.from || "<>") + " → " + m.envelope.to.join(", ") : null], ["Date", m.date ? time(m.date) : null], ["Size", size(m.size)]];
    var dl = el("dl");
    rows.forEach(function (r) { if (r[1]) { dl.appendChild(el("dt", { text: r[0] })); dl.appendChild(el("dd", { text: r[1] })); } });
    var actions = el("div", { "class": "actions" }, [
      el("a", { href: m.urls.raw + "?download=1", download: m.id + ".eml" }, [el("button", { type: "button", text: "Download .eml" })]),
      state.info.readOnly ? null : el("button", { type: "button", "data-testid": "delete", text: "Delete", onclick: function () { api("/api/messages/" + encodeURIComponent(m.id), { method: "DELETE" }); } })
    ]);
    view.appendChild(el("div", { "class": "summary" }, [actions, el("h2", { "data-testid": "subject", text: m.subject === null ? "(no subject)" : m.subject }), dl]));
    var worst = m.checks.some(function (c) { return c.level === "error"; }) ? "error" : m.checks.some(function (c) { return c.level === "warning"; }) ? "warning" : "";
    var tabs = el("div", { "class": "tabs", role: "tablist" });
    TABS.forEach(function (t) {
      var badge = t[0] === "attachments" ? m.attachmentList.length : t[0] === "checks" ? m.checks.length : null;
      tabs.appendChild(el("button", { type: "button", role: "tab", "data-tab": t[0], "aria-selected": state.tab === t[0] ? "true" : "false", onclick: function () { state.tab = t[0]; renderView(); } },
        [t[1], badge ? el("span", { "class": "badge " + (t[0] === "checks" ? worst : ""), text: String(badge) }) : null]));
    });
    view.appendChild(tabs);
    view.appendChild(panel(m));
  }

  function panel(m) {
    var p = el("div", { "class": "panel", role: "tabpanel", "data-panel": state.tab });
    if (state.tab === "html") {
      if (m.html === null) { p.appendChild(el("p", { "class": "empty", text: "This message has no HTML part." })); return p; }
      p.className = "panel frame";
      var frame = el("iframe", { sandbox: "allow-popups allow-popups-to-escape-sandbox", src: m.urls.html, title: "Message HTML", referrerpolicy: "no-referrer", "data-testid": "html-frame" });
      if (m.remoteImages > 0) {
        var note = el("div", { "class": "notice", "data-testid": "remote-notice" }, [
          el("span", { "data-testid": "remote-count", text: m.remoteImages + (m.remoteImages === 1 ? " remote image blocked." : " remote images blocked.") }),
          el("button", { type: "button", "data-testid": "load-remote", text: "Load remote images", onclick: function (e) { frame.src = m.urls.htmlWithRemote; e.target.parentNode.firstChild.textContent = "Remote images loaded for this message."; e.target.remove(); } })
        ]);
        p.appendChild(note);
      }
      p.appendChild(frame);
    } else if (state.tab === "text") {
      p.appendChild(m.text === null ? el("p", { "class": "empty", text: "This message has no plain-text part." }) : el("pre", { "data-testid": "text-body", text: m.text }));
    } else if (state.tab === "headers") {
      var table = el("table");
      m.headers.forEach(function (h) { table.appendChild(el("tr", null, [el("td", { "class": "name", text: h.name }), el("td", { "class": "value", text: h.value, title: h.raw })])); });
      p.appendChild(table);
    } else if (state.tab === "mime") {
      p.appendChild(tree(m.tree));
    } else if (state.tab === "attachments") {
      if (m.attachmentList.length === 0) p.appendChild(el("p", { "class": "empty", text: "No attachments." }));
      var ul = el("ul", { "class": "attachments" });
      m.attachmentList.forEach(function (a) {
        var name = a.filename || (a.contentId ? "<" + a.contentId + ">" : "part " + a.path);
        ul.appendChild(el("li", null, [el("a", { href: a.url, download: a.filename || "", "data-testid": "attachment-link", text: name }), " ", el("span", { "class": "muted", text: a.contentType + ", " + size(a.size) + (a.disposition ? ", " + a.disposition : "") })]));
      });
      p.appendChild(ul);
    } else if (state.tab === "raw") {
      var pre = el("pre", { "data-testid": "raw", text: "loading…" });
      api(m.urls.raw).then(function (r) { return r.text(); }).then(function (t) { pre.textContent = t; });
      p.appendChild(pre);
    } else if (state.tab === "checks") {
      if (m.checks.length === 0) p.appendChild(el("p", { "class": "empty", text: "Nothing found: no check has anything to say about this message." }));
      m.checks.forEach(function (c) { p.appendChild(el("div", { "class": "check " + c.level, "data-testid": "check", "data-check": c.id }, [el("strong", { text: c.level.toUpperCase() + ": " + c.title }), el("span", { text: c.detail })])); });
    }
    return p;
  }

  function tree(node) {
    var label = [el("span", { "class": "type", text: node.contentType }), " ", el("span", { "class": "muted", text: [node.filename ? "“" + node.filename + "”" : "", node.contentId ? "<" + node.contentId + ">" : "", node.disposition || "", node.transferEncoding, node.charset || "", node.children ? "" : size(node.size)].filter(Boolean).join(" · ") })];
    var li = el("li", null, label);
    if (node.children) { var ul = el("ul", { "class": "tree" }); node.children.forEach(function (c) { ul.appendChild(tree(c)); }); li.appendChild(ul); }
    if (node.message) { var inner = el("ul", { "class": "tree" }, [el("li", { text: "message: " + (node.message.subject || "(no subject)") }), tree(node.message.tree)]); li.appendChild(inner); }
    return el("ul", { "class": "tree" }, [li]);
  }

  function select(id) {
    state.selected = id;
    renderList();
    if (!id) { state.detail = null; renderView(); return; }
    api("/api/messages/" + encodeURIComponent(id)).then(function (r) { return r.json(); }).then(function (m) {
      if (state.selected !== id) return;
      state.detail = m; renderView();
    }).catch(function () { state.detail = null; renderView(); });
  }

  function fromHash() { var id = decodeURIComponent(location.hash.slice(1)); select(id || null); }

  document.getElementById("clear").addEventListener("click", function () { api("/api/messages", { method: "DELETE" }); });
  window.addEventListener("hashchange", fromHash);

  api("/api/info").then(function (r) { return r.json(); }).then(function (info) {
    state.info = info;
    if (info.smtpPort) document.getElementById("smtp").textContent = "SMTP 127.0.0.1:" + info.smtpPort;
    if (info.readOnly) document.getElementById("clear").remove();
    return api("/api/messages");
  }).then(function (r) { return r.json(); }).then(function (messages) {
    state.messages = messages; renderList(); fromHash();
  });

  var events = new EventSource("/api/events");
  events.onopen = function () { setStatus("live", "live"); };
  events.onerror = function () { setStatus("offline", "reconnecting"); };
  events.addEventListener("message", function (e) {
    var m = JSON.parse(e.data);
    if (state.messages.some(function (x) { return x.id === m.id; })) return;
    state.messages.unshift(m); renderList(m.id);
  });
  events.addEventListener("delete", function (e) {
    var id = JSON.parse(e.data).id;
    state.messages = state.messages.filter(function (x) { return x.id !== id; });
    if (state.selected === id) location.hash = "";
    renderList();
  });
  events.addEventListener("clear", function () { state.messages = []; if (state.selected) location.hash = ""; state.detail = null; renderList(); renderView(); });
})();
`;
