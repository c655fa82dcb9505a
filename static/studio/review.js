// Review keyboard: A approves, R focuses the reject reason picker, Enter there rejects.
(function () {
  "use strict";

  function typingIn(element) {
    return element && element.closest && element.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var form = document.getElementById("decision-form");
    if (!form || typingIn(event.target)) return;
    var key = event.key.toLowerCase();
    if (key === "a") {
      event.preventDefault();
      form.querySelector("#approve-button").click();
    } else if (key === "r") {
      event.preventDefault();
      form.querySelector("select[name=reason_code]").focus();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("decision-form");
    if (form) {
      var reasons = form.querySelector("select[name=reason_code]");
      var details = form.querySelector("input[name=reason_text]");
      var reject = form.querySelector("#reject-button");
      [reasons, details].forEach(function (field) {
        field.addEventListener("keydown", function (event) {
          if (event.key === "Enter") {
            event.preventDefault();
            reject.click();
          }
        });
      });
      // One decision per image: a second click would only meet a stale claim.
      form.addEventListener("submit", function () {
        setTimeout(function () {
          form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
        }, 0);
      });
    }
    var filter = document.getElementById("queue-filter");
    if (filter) {
      filter.querySelector("select").addEventListener("change", function () { filter.submit(); });
    }
  });
})();
