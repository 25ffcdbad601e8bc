// Draws the dashboard's charts with uPlot from the page's JSON block. The tables beside
// them hold the same figures, so without this script nothing is missing.
"use strict";

function chartWidth(element) {
  return Math.max(280, Math.min(element.clientWidth || 320, 960));
}

function followersChart(element, data) {
  if (!data.days.length) return;
  const xs = data.days.map((day) => Date.parse(day + "T00:00:00Z") / 1000);
  return new uPlot({
    width: chartWidth(element), height: 220,
    scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    series: [{}, { label: "Followers", stroke: "#0b6e4f", width: 2, fill: "rgba(11,110,79,.12)" }],
    axes: [{}, { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : "")) }],
  }, [xs, data.counts], element);
}

const BAR_COLOURS = { reach: "#0b6e4f", views: "#1a56db", reactions: "#b26a00",
                      claims: "#8e3fb6", orders: "#a12020" };

// Grouped bars: each campaign's figures side by side around its x position. uPlot takes one
// x column, so every figure gets its own slightly shifted x, and the other series a gap.
function campaignsChart(element, data) {
  const count = data.labels.length;
  if (!count) return;
  const names = data.names;
  const step = 0.8 / names.length;
  const xs = [];
  const columns = names.map(() => []);
  for (let i = 0; i < count; i++) {
    names.forEach((name, k) => {
      xs.push(i + (k - (names.length - 1) / 2) * step);
      columns.forEach((column, j) => column.push(j === k ? data.series[name][i] : null));
    });
  }
  const bars = uPlot.paths.bars({ size: [0.9, 60] });
  return new uPlot({
    width: chartWidth(element), height: 240,
    scales: { x: { time: false, range: [-0.5, count - 0.5] },
              y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{ splits: () => data.labels.map((_, i) => i),
             values: (u, ticks) => ticks.map((t) => data.labels[t] || "") }, {}],
    series: [{ label: "Campaign", value: (u, x) => data.labels[Math.round(x)] || "" },
      ...names.map((name) => ({ label: name, fill: BAR_COLOURS[name], stroke: BAR_COLOURS[name],
                                width: 0, paths: bars, points: { show: false } }))],
  }, [xs, ...columns], element);
}

document.addEventListener("DOMContentLoaded", () => {
  const block = document.getElementById("dashboard-data");
  if (!block || typeof uPlot === "undefined") return;
  const data = JSON.parse(block.textContent);
  const charts = [
    followersChart(document.getElementById("followers-chart"), data.followers),
    campaignsChart(document.getElementById("campaigns-chart"), data.campaigns),
  ].filter(Boolean);
  window.addEventListener("resize", () => {
    for (const chart of charts) chart.setSize({ width: chartWidth(chart.root.parentNode), height: chart.height });
  });
});
