// Two layout helpers for narrow screens; without JavaScript every page still works
// (the menu stays open, wide tables scroll inside their own box).
(function () {
  "use strict";

  // The menu: served open; folded behind its button on a narrow screen, always open on a
  // wide one (where the button is hidden). Matches the breakpoint in site.css.
  var menu = document.getElementById("site-menu");
  var narrow = window.matchMedia("(max-width: 63.99rem)");
  function fold() {
    if (menu) menu.open = !narrow.matches;
  }
  fold();
  narrow.addEventListener("change", fold);
  if (menu) {
    // Escape closes the open menu and gives the focus back to its button.
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && narrow.matches && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  }

  // Tables: each cell gets its column's name, so that site.css can show the rows as cards
  // on a phone. Cells that already carry a data-label keep it. Rows that a page's own
  // script adds later (live lists) are named as they arrive.
  // Tables of figures (class "figures") are read across and down: they keep their grid and
  // scroll in their box, with the row's name kept in view (site.css).
  function label(table) {
    if (table.classList.contains("figures")) return;
    var heads = table.querySelectorAll("thead th");
    if (!heads.length) return;
    var names = Array.prototype.map.call(heads, function (th) {
      return th.textContent.replace(/\s+/g, " ").trim();
    });
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
      Array.prototype.forEach.call(row.children, function (cell, index) {
        if (!cell.hasAttribute("data-label") && names[index]) {
          cell.setAttribute("data-label", names[index]);
        }
      });
    });
    table.classList.add("stack");
  }
  function labelAll() {
    Array.prototype.forEach.call(document.querySelectorAll("main table"), label);
  }
  labelAll();
  var main = document.getElementById("main");
  if (main && window.MutationObserver) {
    new MutationObserver(labelAll).observe(main, { childList: true, subtree: true });
  }
})();
