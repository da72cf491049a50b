// Dienstweg live messaging: one WebSocket per tab at /ws/. New messages, read markers and
// typing appear without reload; unread counts update on the overview. After a network
// drop the socket reconnects by itself and asks for what it missed (sync), and resends
// what was not acknowledged with the same client id, so nothing is lost or shown twice.
// What the user typed stays in the box until the server acknowledges that very message
// (matched on its client id); refused, it stays with the reason beside it; rate-limited,
// it is sent again on the open socket once the server's retry_after has passed.
(function () {
  "use strict";

  const thread = document.getElementById("thread");
  const counters = () => document.querySelectorAll("[data-unread-thread]");
  if (!thread && counters().length === 0) return;
  // This page's socket is the tab's one: dienstweg/counts.js reads the counts from it.
  window.dienstwegSocket = { send: (frame) => send(frame) };

  const label = (name) => (thread && thread.dataset["label" + name]) || "";
  const threadId = thread ? thread.dataset.thread : null;
  // Who is signed in, on the thread list too (base.html): a read marker of her own, set in
  // another tab, clears that tab's unread count here.
  const me = Number((thread && thread.dataset.user) || document.body.dataset.user || 0) || null;
  let lastSeq = thread ? Number(thread.dataset.lastSeq) : 0;
  let markers = {};
  try {
    const node = document.getElementById("read-markers");
    markers = node ? JSON.parse(node.textContent) : {};
  } catch (error) {
    markers = {};
  }
  const pending = new Map(); // client id -> frame, until acknowledged
  let socket = null;
  let attempt = 0;
  let retry = null;
  let typingSent = 0;
  let typingTimer = null;

  const list = document.getElementById("messages");
  const status = document.getElementById("live-status");
  const typing = document.getElementById("typing");
  const composer = document.getElementById("composer");

  function setStatus(text) {
    if (status) status.textContent = text;
  }

  function formatTime(iso) {
    // As the server renders SHORT_DATETIME_FORMAT: 01.12.2026 10:39
    return new Date(iso)
      .toLocaleString(document.documentElement.lang || "de", {
        day: "2-digit",
        month: "2-digit",
        year: "numeric",
        hour: "2-digit",
        minute: "2-digit",
      })
      .replace(",", "");
  }

  function csrfToken() {
    const input = composer && composer.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function render(message) {
    const item = document.createElement("li");
    item.className = "message" + (message.author === me ? " own" : "");
    item.dataset.seq = String(message.seq);
    item.dataset.id = String(message.id);
    item.dataset.author = message.author === null ? "" : String(message.author);
    const meta = document.createElement("p");
    meta.className = "meta";
    const who = document.createElement("strong");
    who.textContent = message.author_name;
    const when = document.createElement("time");
    when.dateTime = message.created_at;
    when.textContent = formatTime(message.created_at);
    meta.append(who, " · ", when);
    if (message.edited) meta.append(" · " + label("Edited"));
    const readBy = document.createElement("span");
    readBy.className = "read-by";
    meta.append(readBy);
    item.append(meta);
    const body = document.createElement("p");
    if (message.deleted) {
      body.className = "tombstone";
      body.textContent = label("Deleted");
      item.append(body);
    } else {
      body.className = "body";
      body.textContent = message.body; // text only: never parsed as HTML
      item.append(body);
      if (message.attachments.length) {
        const files = document.createElement("ul");
        files.className = "attachments";
        for (const file of message.attachments) {
          const entry = document.createElement("li");
          const link = document.createElement("a");
          link.href = "/nachrichten/anhang/" + encodeURIComponent(file.id) + "/";
          link.textContent = file.name;
          entry.append(link);
          files.append(entry);
        }
        item.append(files);
      }
      if (message.author === me) {
        const form = document.createElement("form");
        form.method = "post";
        form.className = "inline";
        form.action = "/nachrichten/nachricht/" + encodeURIComponent(message.id) + "/loeschen/";
        const token = document.createElement("input");
        token.type = "hidden";
        token.name = "csrfmiddlewaretoken";
        token.value = csrfToken();
        const button = document.createElement("button");
        button.type = "submit";
        button.className = "secondary";
        button.textContent = label("Delete");
        form.append(token, button);
        form.addEventListener("submit", (event) => {
          if (send({ type: "message.delete", message: message.id })) event.preventDefault();
        });
        item.append(form);
      }
    }
    return item;
  }

  // Insert or replace by sequence number: in order, none twice.
  function place(message) {
    if (!list || message.thread !== threadId) return;
    // Numbers run without gaps: one beyond the next means the channel layer dropped an
    // event (it is at-most-once). Ask for what is missing before lastSeq passes it by.
    if (message.seq > lastSeq + 1) send({ type: "sync", thread: threadId, after: lastSeq });
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    const item = render(message);
    const existing = list.querySelector('[data-seq="' + message.seq + '"]');
    if (existing) {
      existing.replaceWith(item);
    } else {
      const later = Array.from(list.children).find((li) => Number(li.dataset.seq) > message.seq);
      list.insertBefore(item, later || null);
    }
    lastSeq = Math.max(lastSeq, message.seq);
    showMarkers();
  }

  function showMarkers() {
    if (!list) return;
    const others = Object.entries(markers)
      .filter(([user]) => Number(user) !== me)
      .map(([, seq]) => seq);
    const readUpTo = others.length ? Math.max(...others) : 0;
    for (const item of list.querySelectorAll("li.own")) {
      const span = item.querySelector(".read-by");
      if (span) span.textContent = Number(item.dataset.seq) <= readUpTo ? " · " + label("Read") : "";
    }
  }

  function markRead() {
    if (threadId && document.visibilityState === "visible" && lastSeq > (markers[me] || 0)) {
      markers[me] = lastSeq;
      send({ type: "read", thread: threadId, seq: lastSeq });
    }
  }

  function bumpCounter(message) {
    for (const counter of counters()) {
      if (counter.dataset.unreadThread === message.thread && message.author !== me) {
        counter.textContent = String(Number(counter.textContent || "0") + 1);
      }
    }
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function handle(event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    document.dispatchEvent(new CustomEvent("dienstweg:frame", { detail: data }));
    switch (data.type) {
      case "message.ack":
        acknowledged(data.client_id);
        place(data.message);
        markRead();
        break;
      case "message.new":
        if (typing && data.message.author !== me) typing.textContent = ""; // no longer typing
        place(data.message);
        if (data.message.thread === threadId) markRead();
        else bumpCounter(data.message);
        break;
      case "message.updated":
        place(data.message);
        break;
      case "sync.result":
        markers = Object.assign(markers, data.markers);
        for (const message of data.messages) place(message);
        if (data.more) send({ type: "sync", thread: threadId, after: lastSeq });
        else markRead();
        showMarkers();
        break;
      case "read.updated":
        if (data.thread === threadId) {
          markers[data.user] = Math.max(markers[data.user] || 0, data.seq);
          showMarkers();
        }
        if (data.user === me) {
          for (const counter of counters()) {
            if (counter.dataset.unreadThread === data.thread) counter.textContent = "0";
          }
        }
        break;
      case "typing":
        if (typing && data.thread === threadId) {
          typing.textContent = data.name + " " + label("Typing");
          clearTimeout(typingTimer);
          typingTimer = setTimeout(() => (typing.textContent = ""), 4000);
        }
        break;
      case "access.revoked":
        if (data.thread === threadId) {
          setStatus(label("Revoked"));
          if (composer) composer.hidden = true;
        }
        break;
      case "error": {
        // Matched on the client id; a frame too large to be read names none, and only the
        // box's message can be that large.
        const about =
          data.client_id || data.ref || (data.code === "too_large" && outgoing && outgoing.id);
        if (outgoing && about === outgoing.id) {
          refused(data);
          break;
        }
        if (data.code === "rate_limited") break; // a marker or typing frame: nobody waits on it
        if (data.ref && pending.has(data.ref)) pending.delete(data.ref);
        setStatus(data.message);
        break;
      }
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/");
    socket.addEventListener("open", () => {
      attempt = 0;
      setStatus(label("Online"));
      if (threadId) send({ type: "sync", thread: threadId, after: lastSeq });
      for (const frame of pending.values()) send(frame);
      if (outgoing) setComposerStatus(text("Sending"));
    });
    socket.addEventListener("message", handle);
    socket.addEventListener("close", (event) => {
      if (event.code === 4401) {
        setStatus(label("Relogin"));
        giveBack(label("Relogin"));
        return;
      }
      if (event.code === 4409) {
        // Closed for a newer tab of the same user (too many open): reconnecting would
        // push out the next one.
        setStatus(label("Superseded"));
        giveBack(label("Superseded"));
        return;
      }
      setStatus(label("Offline"));
      if (outgoing) setComposerStatus(text("Waiting"));
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
      retry = setTimeout(connect, delay);
    });
  }

  // The composer.
  const box = composer ? composer.querySelector("textarea[name=body]") : null;
  const files = composer ? composer.querySelector("input[type=file]") : null;
  const button = composer ? composer.querySelector("button[type=submit]") : null;
  const clientIdInput = composer ? composer.querySelector("input[name=client_id]") : null;
  const counter = document.getElementById("body-counter");
  const composerStatus = document.getElementById("composer-status");
  const composerError = document.getElementById("composer-error");
  // The server's limits, rendered from the same settings it checks.
  const maxChars = () => Number(box.dataset.maxChars);
  const maxFrame = () => Number(box.dataset.maxFrame);
  let outgoing = null; // the box's message from sending until acknowledged or refused
  let level = "count"; // where the counter stands: count, near or over

  function text(name, values) {
    let result = (composer && composer.dataset["label" + name]) || "";
    for (const [key, value] of Object.entries(values || {})) {
      result = result.split("{" + key + "}").join(String(value));
    }
    return result;
  }

  function number(value) {
    return value.toLocaleString(document.documentElement.lang || "de");
  }

  // Characters as the server counts them: code points, without the outer blanks.
  function length() {
    return Array.from(box.value.trim()).length;
  }

  function setComposerStatus(message) {
    if (composerStatus) composerStatus.textContent = message;
  }

  function showError(message) {
    if (!composerError) return;
    composerError.replaceChildren();
    composerError.hidden = !message;
    if (message) {
      const line = document.createElement("p");
      line.textContent = message;
      composerError.append(line);
    }
  }

  function limits() {
    const count = length();
    return {
      count: count,
      values: {
        count: number(count),
        max: number(maxChars()),
        left: number(Math.max(0, maxChars() - count)),
        over: number(Math.max(0, count - maxChars())),
      },
    };
  }

  // The counter warns from 90 % of the limit; over it, sending is refused (never cut short).
  function showCount() {
    if (!counter) return;
    const { count, values } = limits();
    const now = count > maxChars() ? "over" : count >= 0.9 * maxChars() ? "near" : "count";
    counter.textContent = text(now === "count" ? "Count" : now === "near" ? "Near" : "Over", values);
    counter.classList.toggle("near", now === "near");
    counter.classList.toggle("over", now === "over");
    if (now === "over") box.setAttribute("aria-invalid", "true");
    else box.removeAttribute("aria-invalid");
    // Screen readers hear the counter only when it changes its level, not at every key.
    const announce = document.getElementById("body-counter-live");
    if (announce && now !== level) announce.textContent = now === "count" ? "" : counter.textContent;
    if (now !== "over" && level === "over") showError("");
    level = now;
  }

  function lock(on) {
    box.readOnly = on;
    if (button) button.disabled = on;
    composer.setAttribute("aria-busy", on ? "true" : "false");
  }

  function acknowledged(clientId) {
    pending.delete(clientId);
    if (!outgoing || outgoing.id !== clientId) return;
    clearTimeout(outgoing.timer);
    outgoing = null;
    box.value = "";
    if (clientIdInput) clientIdInput.value = crypto.randomUUID();
    lock(false);
    setComposerStatus("");
    showError("");
    showCount();
  }

  function refused(data) {
    if (data.code === "rate_limited") {
      // Sent again on this socket when the server says the window has passed, later at
      // each further refusal; a reconnect in between resends it from `pending` anyway.
      outgoing.tries += 1;
      const seconds = Math.min(60, Math.max(data.retry_after || 1, 2 ** (outgoing.tries - 1)));
      setComposerStatus(text("Retry", { seconds: number(seconds) }));
      clearTimeout(outgoing.timer);
      const current = outgoing;
      current.timer = setTimeout(() => {
        if (outgoing === current && send(current.frame)) setComposerStatus(text("Sending"));
      }, seconds * 1000);
      return;
    }
    giveBack(data.message);
  }

  // The message was not sent: the box is the user's again, with her text and the reason.
  function giveBack(reason) {
    if (!outgoing) return;
    pending.delete(outgoing.id);
    clearTimeout(outgoing.timer);
    outgoing = null;
    lock(false);
    setComposerStatus("");
    showError(text("Refused", { reason: reason }));
    box.focus();
  }

  if (composer && box) {
    composer.addEventListener("submit", (event) => {
      if (outgoing) {
        event.preventDefault(); // the box's message is on its way
        return;
      }
      const { count, values } = limits();
      const withFiles = files && files.files.length > 0;
      if (count > maxChars()) {
        event.preventDefault();
        showError(text("OverRefused", values));
        box.focus();
        return;
      }
      if (count === 0 && !withFiles) {
        event.preventDefault();
        showError(text("Empty"));
        box.focus();
        return;
      }
      // Attachments go with the form: refused, the page comes back with the text.
      // Without an open socket the form posts as it is (its client id makes a resent form
      // harmless): the text is never held only in this tab's memory.
      if (withFiles || !socket || socket.readyState !== WebSocket.OPEN) return;
      const clientId = (clientIdInput && clientIdInput.value) || crypto.randomUUID();
      const frame = { type: "message.send", thread: threadId, client_id: clientId, body: box.value };
      // A text full of characters JSON escapes can outgrow the socket's frame limit while
      // within the message limit: the form has no such limit.
      if (JSON.stringify(frame).length > maxFrame()) return;
      event.preventDefault();
      showError("");
      outgoing = { id: clientId, frame: frame, tries: 0, timer: null };
      pending.set(clientId, frame); // resent with the same id if the socket drops before the ack
      lock(true);
      setComposerStatus(text("Sending"));
      send(frame);
    });
    box.addEventListener("input", () => {
      showCount();
      const now = Date.now();
      if (now - typingSent > 3000) {
        typingSent = now;
        send({ type: "typing", thread: threadId });
      }
    });
    showCount();
  }
  document.addEventListener("visibilitychange", markRead);
  // Back online after a long outage: try at once instead of waiting out the backoff.
  window.addEventListener("online", () => {
    if (retry !== null && (!socket || socket.readyState === WebSocket.CLOSED)) {
      clearTimeout(retry);
      retry = null;
      connect();
    }
  });
  showMarkers();
  connect();
})();
