// Dienstweg live counts: the numbers in the navigation (unread messages, notifications) and
// on the start page (each section of the work queue), right in every tab. The server tells
// the tab's one WebSocket when they may have changed (counts.changed, a new message from
// someone else, a thread read in any tab); the page then asks for them on the same socket,
// once for a burst of such events. Only numbers arrive, never content.
// A page whose own script already holds the socket (messaging/live.js sets
// window.dienstwegSocket and passes each frame on as a "dienstweg:frame" event) shares it;
// every other page opens it here.
(function () {
  "use strict";

  const me = Number(document.body.dataset.user || "0");
  // The start page shows the work queue's counts; other pages only the navigation's.
  const withQueue = document.querySelector("[data-queue-count]") !== null;
  let send = () => false;
  let asking = null;

  function show(counts) {
    const set = (selector, value) => {
      for (const node of document.querySelectorAll(selector)) node.textContent = String(value);
    };
    if (typeof counts.notifications === "number") {
      set('[data-count="notifications"]', counts.notifications);
    }
    for (const [name, value] of Object.entries(counts.badges || {})) {
      set('[data-count="' + CSS.escape(name) + '"]', value);
    }
    // A section counts up to a cap and then shows "99+" (dienstweg/worklist.py).
    const queue = document.querySelector("[data-counted-up-to]");
    const cap = queue ? Number(queue.dataset.countedUpTo) : Infinity;
    for (const [key, value] of Object.entries(counts.queue || {})) {
      set('[data-queue-count="' + CSS.escape(key) + '"]', value > cap ? cap + "+" : value);
    }
  }

  function ask() {
    if (asking !== null) return; // one question for a burst of events
    asking = setTimeout(() => {
      asking = null;
      send({ type: "counts", queue: withQueue });
    }, 250);
  }

  function handle(data) {
    if (!data || typeof data.type !== "string") return;
    if (data.type === "counts") show(data);
    else if (data.type === "counts.changed") ask();
    else if (data.type === "message.new" && data.message && data.message.author !== me) ask();
    else if (data.type === "read.updated" && data.user === me) ask();
  }

  let attempt = 0;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/");
    send = (frame) => {
      if (socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    };
    socket.addEventListener("open", () => {
      // What changed while the page loaded or the socket was away.
      if (attempt > 0) ask();
      attempt = 0;
    });
    socket.addEventListener("message", (event) => {
      try {
        handle(JSON.parse(event.data));
      } catch (error) {
        // a frame that is not JSON: nothing to count
      }
    });
    socket.addEventListener("close", (event) => {
      // 4401: signed out; 4409: closed for a newer tab. Reconnecting would not help.
      if (event.code === 4401 || event.code === 4409) return;
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    });
  }

  // After every deferred script has run: then it is known whether one holds the socket.
  document.addEventListener("DOMContentLoaded", () => {
    if (window.dienstwegSocket) {
      send = window.dienstwegSocket.send;
      document.addEventListener("dienstweg:frame", (event) => handle(event.detail));
    } else {
      connect();
    }
  });
})();
