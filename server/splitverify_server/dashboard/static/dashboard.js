// The dashboard's live updates: every few seconds the page fetches its own address with
// ?part=main (the server renders the same part it rendered at first) and swaps it in; the
// curves come along as JSON in <script id="curves"> and are drawn with uPlot.
(function () {
  "use strict";
  const live = document.getElementById("live");
  const every = Number(document.body.dataset.refreshMs) || 1000;
  const charts = {};

  function partUrl() {
    const url = new URL(window.location.href);
    url.searchParams.set("part", "main");
    return url.toString();
  }

  function padded(series) {
    const length = Math.max(0, ...series.map((s) => s.length));
    return series.map((s) => s.concat(Array(length - s.length).fill(null)));
  }

  function draw(id, options, data) {
    const element = document.getElementById(id);
    if (!element || !window.uPlot) return;
    const key = id + ":" + options.series.map((s) => s.label).join(",");
    let chart = charts[id];
    if (chart && (chart.key !== key || !element.contains(chart.plot.root))) {
      chart.plot.destroy();
      chart = null;
    }
    if (!chart) {
      const plot = new uPlot({ width: Math.max(320, element.clientWidth || 480), height: 220,
                               ...options }, data, element);
      chart = charts[id] = { key, plot };
    } else {
      chart.plot.setData(data);
    }
  }

  function drawCurves() {
    const source = document.getElementById("curves");
    if (!source) return;
    const curves = JSON.parse(source.textContent);
    draw("chart-loss", {
      scales: { x: { time: false }, accuracy: { range: [0, 1] } },
      axes: [{ label: "step" }, { label: "loss" },
             { scale: "accuracy", side: 1, label: "batch accuracy", grid: { show: false } }],
      series: [{ label: "step" }, { label: "loss", stroke: "#1f77b4" },
               { label: "batch accuracy", stroke: "#2ca02c", scale: "accuracy" }],
    }, [curves.step, curves.loss, curves.batch_accuracy]);
    const kinds = Object.keys(curves.verify_s).sort();
    const seconds = padded([curves.server_prove_s, ...kinds.map((k) => curves.verify_s[k])]);
    const proofs = seconds[0].map((_, i) => i + 1);
    draw("chart-seconds", {
      scales: { x: { time: false } },
      axes: [{ label: "proof #" }, { label: "seconds" }],
      series: [{ label: "proof #" }, { label: "server_step prove s", stroke: "#d62728" },
               ...kinds.map((k, i) => ({ label: k + " verify s",
                                         stroke: ["#9467bd", "#ff7f0e", "#8c564b"][i % 3] }))],
    }, [proofs, ...seconds]);
  }

  async function refresh() {
    try {
      const response = await fetch(partUrl(), { credentials: "same-origin" });
      if (response.ok) {
        live.innerHTML = await response.text();
        live.dataset.updated = String(Date.now());
        drawCurves();
      } else {
        live.dataset.error = "HTTP " + response.status;
      }
    } catch (error) {
      live.dataset.error = String(error);      // the server stopped: keep the last view
    }
    window.setTimeout(refresh, every);
  }

  drawCurves();
  window.setTimeout(refresh, every);
})();
