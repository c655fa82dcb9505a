// Thumbnails of small images (the 64 px demo renders) are scaled up to fill their cards:
// mark those so CSS keeps their pixels sharp (image-rendering: pixelated). A large image
// scaled down keeps smooth resampling, which pixelated would alias.
// A file, not an inline <script>: the Content-Security-Policy allows scripts from 'self' only.
(function () {
  function mark(img) {
    if (!img.naturalWidth || !img.clientWidth) return;
    var sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
    var scale = getComputedStyle(img).objectFit === "contain" ? Math.min(sx, sy) : Math.max(sx, sy);
    img.toggleAttribute("data-upscaled", scale * (window.devicePixelRatio || 1) > 1);
  }
  function markAll() { document.querySelectorAll("main img").forEach(function (img) { if (img.complete) mark(img); }); }
  document.addEventListener("load", function (event) { if (event.target.tagName === "IMG") mark(event.target); }, true);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", markAll);
  else markAll();
  document.addEventListener("htmx:afterSettle", markAll);
  window.addEventListener("resize", markAll);
})();
