/* The inbox: actions through the API, a title badge and a chime for new falls. */
"use strict";
(() => {
  const box = document.getElementById("inbox-live");
  const announce = document.getElementById("inbox-announce");
  const baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
  const seen = new Set();
  let first = true;

  function scan() {
    const falls = [...box.querySelectorAll('li[data-category="fall"]')]
      .filter((li) => li.dataset.state === "pending" || li.dataset.state === "firing");
    const fresh = falls.filter((li) => !seen.has(li.dataset.alertId));
    falls.forEach((li) => seen.add(li.dataset.alertId));
    document.title = (falls.length ? `(${falls.length}) ` : "") + baseTitle;
    if (!first && fresh.length) {
      lw.chime();
      announce.textContent = `New fall alert: ${fresh.length} waiting to be acknowledged.`;
    }
    first = false;
  }

  const refresh = lw.live(box, { every: 3000, onUpdate: scan });
  scan();

  const toggle = document.getElementById("sound-toggle");
  toggle.addEventListener("click", async () => {
    try { await lw.enableSound(); lw.chime(); toggle.setAttribute("aria-pressed", "true"); toggle.textContent = "Sound is on for new falls"; }
    catch (e) { toggle.textContent = "This browser would not play sound"; }
  });

  box.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-act]");
    if (!button) return;
    const id = button.dataset.id, act = button.dataset.act;
    const result = document.getElementById("result-" + id);
    let body = {};
    if (act === "assign") {
      const who = document.getElementById("assign-" + id).value.trim();
      if (!who) { result.textContent = "Enter who to assign it to."; document.getElementById("assign-" + id).focus(); return; }
      body = { assignee: who };
    } else if (act === "note") {
      const text = document.getElementById("note-" + id).value.trim();
      if (!text) { result.textContent = "Write the note first."; document.getElementById("note-" + id).focus(); return; }
      body = { text };
    }
    button.disabled = true;
    try {
      const alert = await lw.post(`/api/v1/alerts/${id}/${act}`, body);
      result.textContent = { ack: "Acknowledged.", assign: "Assigned.", note: "Note added.", resolve: "Resolved." }[act]
        + " (" + alert.state + ")";
      box.querySelectorAll(`[data-actions="${id}"] input`).forEach((i) => { i.value = ""; });
      announce.textContent = result.textContent;
      box.dataset.last = "";  // force the swap even if the refresh looks the same
      document.activeElement?.blur?.();
      await refresh();
    } catch (e) {
      result.textContent = "Not done: " + e.message;
      button.disabled = false;
    }
  });
})();
