// "weitere Person hinzufügen" without a round trip: a copy of the empty row the page
// carries in a <template>, numbered as Django's formset expects. Without JavaScript the
// button submits, and the server sends the form back with one more row.
(function () {
  "use strict";
  const template = document.getElementById("member-template");
  const button = document.querySelector('button[name="add_member"]');
  if (!template || !button) return;
  const prefix = template.dataset.prefix;
  const total = document.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]');
  if (!total) return;

  button.addEventListener("click", function (event) {
    event.preventDefault();
    const index = Number(total.value);
    const row = template.content.firstElementChild.cloneNode(true);
    // Attributes and text only: nothing is parsed as HTML.
    row.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
      ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
        const value = el.getAttribute(attr);
        if (value !== null) el.setAttribute(attr, value.replaceAll("__prefix__", String(index)));
      });
    });
    const legend = row.querySelector("legend");
    if (legend) legend.textContent = legend.textContent.replace("__number__", String(index + 1));
    button.parentNode.insertBefore(row, button);
    total.value = String(index + 1);
    const first = row.querySelector("select, input:not([type=hidden])");
    if (first) first.focus();
  });
})();
