/* Live offload progress on the overview: server-sent events from /overzicht/voortgang update the bars.
   Without JavaScript the page still shows the state at load time. */
(function () {
  "use strict";
  var table = document.getElementById("offload");
  if (!table || !window.EventSource) { return; }
  var labels = JSON.parse(table.getAttribute("data-states") || "{}");
  var source = new EventSource("/overzicht/voortgang");
  source.onmessage = function (event) {
    var data = JSON.parse(event.data);
    table.querySelectorAll("tr[data-serial]").forEach(function (row) {
      var p = data[row.getAttribute("data-serial")];
      if (!p) { return; }
      var bar = row.querySelector("progress");
      bar.max = Math.max(p.bytes_total, 1);
      bar.value = p.bytes_done;
      // a USB camera's ingest comes with its own text ("done, you can take the camera out", an error):
      // the camera's owner reads it at the box, so it says more than a state
      row.querySelector(".state").textContent = p.text ||
        (labels[p.state] || p.state) + " (" + p.recordings_done + "/" + p.recordings_total + ")";
    });
  };
}());
