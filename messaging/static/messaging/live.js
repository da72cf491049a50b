// Dienstweg live messaging: one WebSocket per tab at /ws/. New messages, read markers and
// typing appear without reload; unread counts update on the overview. After a network
// drop the socket reconnects by itself and asks for what it missed (sync), and resends
// what was not acknowledged with the same client id, so nothing is lost or shown twice.
(function () {
  "use strict";

  const thread = document.getElementById("thread");
  const counters = () => document.querySelectorAll("[data-unread-thread]");
  if (!thread && counters().length === 0) return;

  const label = (name) => (thread && thread.dataset["label" + name]) || "";
  const threadId = thread ? thread.dataset.thread : null;
  const me = thread ? Number(thread.dataset.user) : null;
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
    switch (data.type) {
      case "message.ack":
        pending.delete(data.client_id);
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
      case "error":
        if (data.ref && pending.has(data.ref) && data.code !== "rate_limited") pending.delete(data.ref);
        setStatus(data.message);
        break;
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
    });
    socket.addEventListener("message", handle);
    socket.addEventListener("close", (event) => {
      if (event.code === 4401) {
        setStatus(label("Relogin"));
        return;
      }
      if (event.code === 4409) {
        // Closed for a newer tab of the same user (too many open): reconnecting would
        // push out the next one.
        setStatus(label("Superseded"));
        return;
      }
      setStatus(label("Offline"));
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
      retry = setTimeout(connect, delay);
    });
  }

  if (composer) {
    const body = composer.querySelector("textarea[name=body]");
    const files = composer.querySelector("input[type=file]");
    composer.addEventListener("submit", (event) => {
      // Attachments go with the form; text goes over the socket when it is open.
      if ((files && files.files.length) || !body.value.trim()) return;
      // Without an open socket the form posts as it is (its own client id makes a resent
      // form harmless): the text is never held only in this tab's memory.
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      const clientId = crypto.randomUUID();
      const frame = { type: "message.send", thread: threadId, client_id: clientId, body: body.value };
      pending.set(clientId, frame); // resent with the same id if the socket drops before the ack
      send(frame);
      event.preventDefault();
      body.value = "";
    });
    body.addEventListener("input", () => {
      const now = Date.now();
      if (now - typingSent > 3000) {
        typingSent = now;
        send({ type: "typing", thread: threadId });
      }
    });
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
