// Draws each report chart from the JSON beside it (the same numbers as the table below it).
// A dataset with "axis": "y1" goes on a second scale on the right (e.g. images beside money).
(function () {
  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || !window.Chart) return;
    var spec = JSON.parse(source.textContent);
    var scales = { y: { beginAtZero: true, stacked: !!spec.stacked }, x: { stacked: !!spec.stacked } };
    var datasets = spec.datasets.map(function (d) {
      var out = { label: d.label, data: d.data };
      if (d.axis) { out.yAxisID = d.axis; out.type = "line"; scales[d.axis] = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } }; }
      return out;
    });
    canvas.chart = new window.Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: scales }
    });
    canvas.dataset.drawn = "true";
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
