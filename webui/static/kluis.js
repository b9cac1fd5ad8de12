/* Every page: the menu folds into one button on a phone, and a table's rows stack on a phone with each value
   labelled by its column heading (kluis.css decides the width). Without JavaScript the menu stays open and a
   wide table scrolls inside its own box. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var toggle = document.querySelector(".menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      toggle.setAttribute("aria-expanded", toggle.getAttribute("aria-expanded") === "true" ? "false" : "true");
    });
  }

  // Stacked rows are no longer laid out as a table, so the table's roles are said explicitly: a screen
  // reader still announces a table with its headings.
  function stack(table) {
    var heads = [];
    table.querySelectorAll("thead tr:first-child th").forEach(function (th) {
      for (var i = 0; i < (th.colSpan || 1); i++) { heads.push(th.textContent.trim()); }
    });
    if (!heads.length) { return; }
    table.classList.add("stacked");
    table.setAttribute("role", "table");
    table.querySelectorAll("thead, tbody").forEach(function (group) {
      if (group.closest("table") === table) { group.setAttribute("role", "rowgroup"); }
    });
    table.querySelectorAll("tr").forEach(function (row) {
      if (row.closest("table") !== table) { return; }
      row.setAttribute("role", "row");
      var column = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        if (cell.tagName === "TH") {
          cell.setAttribute("role", cell.getAttribute("scope") === "row" ? "rowheader" : "columnheader");
        } else {
          cell.setAttribute("role", "cell");
        }
        if (heads[column] && cell.tagName === "TD" && row.parentNode.tagName !== "THEAD") {
          cell.setAttribute("data-label", heads[column]);
          if (!cell.textContent.trim() && !cell.querySelector("*")) { cell.classList.add("empty"); }
          // the value as one box beside its heading (kluis.css), whatever it holds: text, links, a form
          var value = document.createElement("div");
          value.className = "value";
          while (cell.firstChild) { value.appendChild(cell.firstChild); }
          cell.appendChild(value);
        }
        column += cell.colSpan || 1;
      });
    });
  }
  // The logboek's table has a phone layout of its own (kluis.css: table.audit): a sentence per row.
  document.querySelectorAll("main table:not(.audit)").forEach(stack);

  // A cell or value holding one long piece without a place to break (a hash, a reference typed without spaces)
  // may break anywhere; other cells keep whole words, so that one such value does not squeeze every column.
  var LONG = /[^\s\-\/]{30,}/;
  document.querySelectorAll("main td, main dd").forEach(function (cell) {
    if (LONG.test(cell.textContent)) { cell.classList.add("long"); }
  });
})();
