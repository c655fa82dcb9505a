// Review keyboard. Single mode: A approve, R focus the reject reason (Enter rejects), S skip,
// U undo the last decision, N send the last rejected image back for a new seed, G grid.
// Grid mode: arrows move, X/Space toggle, * select all, A approve selected, R reject selected.
(function () {
  "use strict";

  function typingIn(element) {
    return element && element.closest && element.closest("input:not([type=checkbox]), textarea, select, [contenteditable]");
  }

  function click(selector) {
    var button = document.querySelector(selector);
    if (button && !button.disabled) { button.click(); return true; }
    return false;
  }

  function gridCards() {
    return Array.prototype.slice.call(document.querySelectorAll(".review-grid .grid-card"));
  }

  function moveFocus(delta) {
    var cards = gridCards();
    if (!cards.length) return;
    var current = cards.indexOf(document.activeElement && document.activeElement.closest(".grid-card"));
    var perRow = Math.max(1, Math.round(cards[0].parentElement.clientWidth / cards[0].offsetWidth));
    var step = delta === "up" ? -perRow : delta === "down" ? perRow : delta === "left" ? -1 : 1;
    var next = current < 0 ? 0 : Math.min(Math.max(current + step, 0), cards.length - 1);
    cards[next].querySelector("input").focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (typingIn(event.target)) return;
    var single = document.getElementById("decision-form");
    var grid = document.getElementById("grid-form");
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = true;
    if (key === "u") {
      handled = click("#undo-button");
    } else if (key === "n") {
      handled = click("#send-back-button");
    } else if (key === "g") {
      var link = document.getElementById(grid ? "single-link" : "grid-link");
      if (link) window.location.href = link.href; else handled = false;
    } else if (single && key === "a") {
      handled = click("#approve-button");
    } else if (single && key === "r") {
      single.querySelector("select[name=reason_code]").focus();
    } else if (single && key === "s") {
      handled = click("#skip-button");
    } else if (grid && key === "a") {
      handled = click("#approve-button");
    } else if (grid && key === "r") {
      grid.querySelector("select[name=reason_code]").focus();
    } else if (grid && key === "x") {
      var box = document.activeElement && document.activeElement.closest(".grid-card");
      box = box ? box.querySelector("input") : null;
      if (box) box.checked = !box.checked; else handled = false;
    } else if (grid && key === "*") {
      var boxes = grid.querySelectorAll("input[name=tasks]");
      var all = Array.prototype.every.call(boxes, function (b) { return b.checked; });
      boxes.forEach(function (b) { b.checked = !all; });
    } else if (grid && key.indexOf("Arrow") === 0) {
      moveFocus(key.slice(5).toLowerCase());
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });

  function rejectOnEnter(form) {
    var reject = form.querySelector("#reject-button");
    form.querySelectorAll("select[name=reason_code], input[name=reason_text]").forEach(function (field) {
      field.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          reject.click();
        } else if (event.key === "Escape") {
          field.blur();
        }
      });
    });
    // One decision per claim: a second click would only meet a stale claim.
    form.addEventListener("submit", function () {
      setTimeout(function () {
        form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
      }, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    ["decision-form", "grid-form"].forEach(function (id) {
      var form = document.getElementById(id);
      if (form) rejectOnEnter(form);
    });
    var first = document.querySelector(".review-grid .grid-card input");
    if (first) first.focus();
    var filter = document.getElementById("queue-filter");
    if (filter) {
      filter.querySelector("select").addEventListener("change", function () { filter.submit(); });
    }
    // Keys pressed before this point would go unheard; browser tests wait for the mark.
    document.documentElement.setAttribute("data-review-keys", "ready");
  });
})();
