/* lorawatch pages: small, dependency-free helpers. Everything works without this script except the
   live refresh, the charts and the inbox's buttons. */
"use strict";
const lw = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  /* A plotly figure from the JSON in <script type="application/json" id=...>. */
  function plot(el) {
    if (!window.Plotly || !el) return;
    const src = document.getElementById(el.dataset.figure);
    if (!src) return;
    const fig = JSON.parse(src.textContent);
    const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
    if (el.dataset.plotted) { Plotly.react(el, fig.data, fig.layout, config); return; }
    Plotly.newPlot(el, fig.data, fig.layout, config);
    el.dataset.plotted = "1";
    el.on?.("plotly_click", (ev) => {
      const url = ev?.points?.[0]?.customdata;
      if (typeof url === "string" && url.startsWith("/")) window.location.assign(url);
      else if (Array.isArray(url) && typeof url[0] === "string" && url[0].startsWith("/")) window.location.assign(url[0]);
    });
  }

  function plotAll(root) { (root || document).querySelectorAll("[data-figure]").forEach(plot); }

  /* Poll a fragment and swap it in, without reloading the page. Skipped while the person is typing
     in it (a refresh must never eat a half-written note). */
  function live(container, { every = 5000, onUpdate } = {}) {
    const url = container.dataset.live;
    const status = document.getElementById(container.dataset.liveStatus || "");
    let busy = false;
    async function tick() {
      if (busy || document.hidden) return;
      const active = document.activeElement;
      if (active && container.contains(active) && (active.tagName === "INPUT" || active.tagName === "TEXTAREA"
          || active.tagName === "SELECT") && active.value) return;
      busy = true;
      try {
        const r = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
        if (r.status === 401 || r.redirected && r.url.includes("/login")) { window.location.assign("/login"); return; }
        if (!r.ok) throw new Error(r.status);
        const html = await r.text();
        if (html !== container.dataset.last) {
          const focusId = active && container.contains(active) ? active.id : null;
          container.innerHTML = html;
          container.dataset.last = html;
          onUpdate?.(container);
          plotAll(container);
          if (focusId) document.getElementById(focusId)?.focus();
        }
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
      } catch (e) {
        if (status) status.textContent = "Could not refresh (" + e.message + "); retrying";
      } finally { busy = false; }
    }
    container.dataset.last = container.innerHTML;
    setInterval(tick, every);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
    return tick;
  }

  /* POST JSON to the API as this session (the CSRF token goes in its header). */
  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    if (!r.ok) {
      let message = "HTTP " + r.status;
      try { message = (await r.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return r.json();
  }

  /* A short two-tone chime through WebAudio (no sound file); browsers allow it after a click. */
  let audio = null;
  function enableSound() {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    return audio.resume();
  }
  function chime() {
    if (!audio || audio.state !== "running") return false;
    [880, 660].forEach((hz, i) => {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = hz; o.connect(g); g.connect(audio.destination);
      const t = audio.currentTime + i * 0.25;
      g.gain.setValueAtTime(0.25, t); g.gain.exponentialRampToValueAtTime(0.001, t + 0.22);
      o.start(t); o.stop(t + 0.23);
    });
    return true;
  }

  document.addEventListener("DOMContentLoaded", () => plotAll(document));
  return { csrf, plot, plotAll, live, post, enableSound, chime };
})();
