/* Draws the dashboard's charts from the JSON next to each canvas (the numbers are also
   in a table under each chart). Chart.js is vendored in ./vendor: nothing is loaded
   from another site. */
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  // Colour-blind-safe palette (Okabe–Ito), distinguishable in greyscale by dash too.
  var colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
  var dashes = [[], [6, 3], [2, 2], [8, 2, 2, 2]];
  document.querySelectorAll("script[data-chart]").forEach(function (node) {
    var canvas = document.getElementById(node.getAttribute("data-chart"));
    if (!canvas) { return; }
    var data = JSON.parse(node.textContent);
    var kind = canvas.getAttribute("data-kind") || "line";
    new Chart(canvas, {
      type: kind,
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s, i) {
          return { label: s.name, data: s.values, borderColor: colours[i % colours.length],
                   backgroundColor: colours[i % colours.length],
                   borderDash: dashes[i % dashes.length], tension: 0.2, pointRadius: 2 };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  });
})();
