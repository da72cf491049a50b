// Dienstweg live messaging: one WebSocket per tab at /ws/. New messages, read markers and
// typing appear without reload; unread counts update on the overview. After a network
// drop the socket reconnects by itself and asks for what it missed (sync), and resends
// what was not acknowledged with the same client id, so nothing is lost or shown twice.
// What the user typed stays in the box until the server acknowledges that very message
// (matched on its client id); refused, it stays with the reason beside it; rate-limited,
// it is sent again on the open socket once the server's retry_after has passed.
// Messages arrive rendered by the server's own template (their "html"), so a message
// offers the same actions live as after a reload; this script only places them.
// Enter sends, Shift+Enter breaks the line; files can be dropped onto the composer.
(function () {
  "use strict";

  const thread = document.getElementById("thread");
  const counters = () => document.querySelectorAll("[data-unread-thread]");
  if (!thread && counters().length === 0) return;
  // This page's socket is the tab's one: dienstweg/counts.js reads the counts from it.
  window.dienstwegSocket = { send: (frame) => send(frame) };

  const label = (name) => (thread && thread.dataset["label" + name]) || "";
  const threadId = thread ? thread.dataset.thread : null;
  const owner = document.querySelector("[data-user]");
  const me = owner ? Number(owner.dataset.user) : null;
  let lastSeq = thread ? Number(thread.dataset.lastSeq) : 0;
  let markers = {};
  try {
    const node = document.getElementById("read-markers");
    markers = node ? JSON.parse(node.textContent) : {};
  } catch (error) {
    markers = {};
  }
  let readerLabels = {}; // user id -> "Ben Becker (Jobcenter …)"
  try {
    const node = document.getElementById("reader-labels");
    readerLabels = node ? JSON.parse(node.textContent) : {};
  } catch (error) {
    readerLabels = {};
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

  // The server's list item for this user; its forms get the page's CSRF token (a socket
  // has no request to render one from).
  function render(message) {
    const holder = document.createElement("template");
    holder.innerHTML = message.html; // rendered and escaped by Django's template
    const item = holder.content.firstElementChild;
    for (const token of item.querySelectorAll("input[name=csrfmiddlewaretoken]")) {
      if (!token.value) token.value = csrfToken();
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

  // Each reader is named once, on the latest own message she has read.
  function showMarkers() {
    if (!list) return;
    const own = Array.from(list.querySelectorAll("li.own")).map((item) => ({
      item: item,
      seq: Number(item.dataset.seq),
      names: [],
    }));
    for (const [user, seq] of Object.entries(markers)) {
      if (Number(user) === me) continue;
      let last = null;
      for (const entry of own) if (entry.seq <= seq) last = entry;
      if (last) last.names.push(readerLabels[user] || "");
    }
    for (const entry of own) {
      const span = entry.item.querySelector(".read-by");
      const names = entry.names.filter(Boolean).sort().join(", ");
      if (span) span.textContent = names ? " · " + label("Read").replace("{names}", names) : "";
    }
  }

  function markRead() {
    if (threadId && document.visibilityState === "visible" && lastSeq > (markers[me] || 0)) {
      markers[me] = lastSeq;
      send({ type: "read", thread: threadId, seq: lastSeq });
    }
  }

  // An overview's count: the thread's newest number less the user's marker, so a
  // message read in another tab (read.updated to all her sockets) clears it here too.
  function showCounter(counter) {
    const unread = Number(counter.dataset.lastSeq || 0) - Number(counter.dataset.readSeq || 0);
    counter.textContent = String(Math.max(0, unread));
  }

  function bumpCounter(message) {
    for (const counter of counters()) {
      if (counter.dataset.unreadThread !== message.thread) continue;
      counter.dataset.lastSeq = String(Math.max(Number(counter.dataset.lastSeq || 0), message.seq));
      if (message.author === me) {
        counter.dataset.readSeq = String(Math.max(Number(counter.dataset.readSeq || 0), message.seq));
      }
      showCounter(counter);
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
        // Posting marked the thread read up to this message (post_message): no read frame.
        markers[me] = Math.max(markers[me] || 0, data.message.seq);
        place(data.message);
        markRead();
        break;
      case "message.new":
        if (typing && data.message.author !== me) typing.textContent = ""; // no longer typing
        place(data.message);
        bumpCounter(data.message);
        if (data.message.thread === threadId) markRead();
        break;
      case "message.updated":
        place(data.message);
        break;
      case "sync.result":
        markers = Object.assign(markers, data.markers);
        readerLabels = Object.assign(readerLabels, data.labels || {});
        for (const message of data.messages) place(message);
        if (data.more) send({ type: "sync", thread: threadId, after: lastSeq });
        else markRead();
        showMarkers();
        break;
      case "read.updated":
        if (data.thread === threadId) {
          markers[data.user] = Math.max(markers[data.user] || 0, data.seq);
          if (data.label) readerLabels[data.user] = data.label;
          showMarkers();
        }
        if (data.user === me) {
          for (const counter of counters()) {
            if (counter.dataset.unreadThread !== data.thread) continue;
            counter.dataset.readSeq = String(Math.max(Number(counter.dataset.readSeq || 0), data.seq));
            showCounter(counter);
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
  const replyInput = composer ? composer.querySelector("input[name=reply_to]") : null;
  const replyPreview = document.getElementById("reply-preview");
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
    answer(null);
    if (suggestions) offerMentions();
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
      if (replyInput && replyInput.value) frame.reply_to = replyInput.value;
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
    // Enter sends as in other chat tools; Shift+Enter (and Enter while an input method
    // composes a word) stays a line break.
    box.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      composer.requestSubmit();
    });
    showCount();
  }

  // "@" and the start of a name offers the thread's readers; a click (or Enter on the
  // focused button) puts "@Full Name " in the box, which post_message turns into a
  // notification for her.
  const suggestions = document.getElementById("mention-suggestions");
  let mentionable = [];
  try {
    const node = document.getElementById("mentionable");
    mentionable = node ? JSON.parse(node.textContent) : [];
  } catch (error) {
    mentionable = [];
  }

  function typedMention() {
    const before = box.value.slice(0, box.selectionStart);
    const match = /(^|\s)@([^@\n]{0,40})$/.exec(before);
    return match ? { start: before.length - match[2].length - 1, typed: match[2] } : null;
  }

  function offerMentions() {
    if (!suggestions) return;
    const list = suggestions.querySelector("ul");
    const typed = typedMention();
    const wanted = typed ? typed.typed.toLocaleLowerCase() : null;
    const found =
      wanted === null
        ? []
        : mentionable
            .filter((person) =>
              person.name
                .toLocaleLowerCase()
                .split(" ")
                .concat([person.name.toLocaleLowerCase()])
                .some((part) => part.startsWith(wanted)),
            )
            .slice(0, 6);
    list.replaceChildren();
    for (const person of found) {
      const entry = document.createElement("li");
      const choose = document.createElement("button");
      choose.type = "button";
      choose.className = "secondary";
      choose.textContent = person.label;
      choose.addEventListener("click", () => {
        const at = typedMention() || typed;
        const after = box.value.slice(box.selectionStart);
        box.value = box.value.slice(0, at.start) + "@" + person.name + " " + after;
        const caret = at.start + person.name.length + 2;
        box.focus();
        box.setSelectionRange(caret, caret);
        offerMentions();
        showCount();
      });
      entry.append(choose);
      list.append(entry);
    }
    suggestions.hidden = found.length === 0;
  }

  if (box && suggestions) {
    box.addEventListener("input", offerMentions);
    box.addEventListener("click", offerMentions);
  }

  // "Antworten": the link works without JavaScript (the page comes back with the quote);
  // here it fills the composer in place.
  function answer(item) {
    if (!replyInput || !replyPreview) return;
    replyInput.value = item ? item.dataset.id : "";
    replyPreview.hidden = !item;
    if (!item) return;
    const author = item.querySelector(".meta .author");
    const body = item.querySelector(".body");
    document.getElementById("reply-author").textContent = item.classList.contains("own")
      ? replyPreview.dataset.labelOwn || ""
      : author
        ? author.textContent
        : "";
    const excerpt = body ? body.textContent : "";
    document.getElementById("reply-excerpt").textContent =
      excerpt.length > 120 ? excerpt.slice(0, 119) + "…" : excerpt;
    if (box) box.focus();
  }

  if (list) {
    list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-reply]");
      if (!link || !composer) return;
      event.preventDefault();
      answer(link.closest("li.message"));
    });
    // Edit and delete go over the socket when it is open, else as the forms post.
    list.addEventListener("submit", (event) => {
      const form = event.target;
      const id = form.dataset.message;
      if (!id) return;
      const body = form.querySelector("textarea[name=body]");
      const frame = form.classList.contains("delete")
        ? { type: "message.delete", message: id }
        : { type: "message.edit", message: id, body: body ? body.value : "" };
      if (send(frame)) event.preventDefault();
    });
  }
  const cancel = document.getElementById("reply-cancel");
  if (cancel) {
    cancel.addEventListener("click", (event) => {
      event.preventDefault();
      answer(null);
    });
  }

  // Files dropped onto the composer go into its file input, as if chosen there.
  const dropStatus = document.getElementById("drop-status");
  const dropZone = document.getElementById("drop-zone");
  if (composer && files && typeof DataTransfer !== "undefined") {
    const showFiles = () => {
      if (!dropStatus || !dropZone) return;
      const names = Array.from(files.files).map((file) => file.name);
      dropStatus.textContent = names.length
        ? ((names.length === 1 ? dropZone.dataset.labelDroppedOne : dropZone.dataset.labelDropped) || "")
            .replace("{count}", String(names.length))
            .replace("{names}", names.join(", "))
        : "";
    };
    composer.addEventListener("dragover", (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      composer.classList.add("dragging");
    });
    composer.addEventListener("dragleave", (event) => {
      if (!composer.contains(event.relatedTarget)) composer.classList.remove("dragging");
    });
    composer.addEventListener("drop", (event) => {
      composer.classList.remove("dragging");
      if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
      event.preventDefault();
      const chosen = new DataTransfer();
      for (const file of files.files) chosen.items.add(file);
      for (const file of event.dataTransfer.files) chosen.items.add(file);
      files.files = chosen.files;
      files.dispatchEvent(new Event("change", { bubbles: true }));
    });
    files.addEventListener("change", showFiles);
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
