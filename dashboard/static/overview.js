/* The overview refreshes its table, counts and alerts in place, and redraws the map's points keeping
   the person's zoom (the figure's uirevision). */
"use strict";
(() => {
  const box = document.getElementById("overview-live");
  let map = box.querySelector("#gully-map");
  const keepMap = () => {
    // The fragment brings a new map <div>; put the plotted one back and give it the new figure.
    const fresh = box.querySelector("#gully-map");
    if (fresh && map && fresh !== map) {
      fresh.replaceWith(map);  // plotAll then redraws it with the new figure (Plotly.react)
    }
    map = box.querySelector("#gully-map");
  };
  lw.live(box, { every: 5000, onUpdate: keepMap });
})();
