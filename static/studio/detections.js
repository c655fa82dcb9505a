// Boxes over an image (templates/includes/detections.html): the overlay is moved next to the
// figure's <img> and fitted to the picture itself, which object-fit: contain may letterbox
// inside the element. The button shows and hides it.
(function () {
  "use strict";
  if (window.studioDetections) return;
  window.studioDetections = true;

  function fit(img, overlay) {
    var width = img.clientWidth, height = img.clientHeight;
    var natural = img.naturalWidth && img.naturalHeight ? img.naturalWidth / img.naturalHeight : width / height;
    var shownWidth = width, shownHeight = height;
    if (width / height > natural) shownWidth = height * natural; else shownHeight = width / natural;
    overlay.style.left = img.offsetLeft + (width - shownWidth) / 2 + "px";
    overlay.style.top = img.offsetTop + (height - shownHeight) / 2 + "px";
    overlay.style.width = shownWidth + "px";
    overlay.style.height = shownHeight + "px";
  }

  function setUp(panel) {
    var figure = panel.closest("figure");
    var img = figure && figure.querySelector("img");
    var overlay = panel.querySelector(".detections-overlay");
    var button = panel.querySelector(".detections-toggle");
    if (!img || !overlay || !button) return;
    var frame = document.createElement("div");
    frame.className = "detections-frame";
    img.parentNode.insertBefore(frame, img);
    frame.appendChild(img);
    frame.appendChild(overlay);
    var refit = function () { fit(img, overlay); };
    img.addEventListener("load", refit);
    window.addEventListener("resize", refit);
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = overlay.hidden;
      overlay.hidden = !show;
      if (show) refit();
      button.setAttribute("aria-pressed", String(show));
      button.textContent = show ? "Hide the boxes" : "Show what the checks found";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-detections]").forEach(setUp);
    // Browser tests wait for this mark before pressing the button.
    document.documentElement.setAttribute("data-detections", "ready");
  });
})();
