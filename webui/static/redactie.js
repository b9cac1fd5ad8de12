/* Redaction form: drag a rectangle on the still frame; it is added, in the video's pixels, as a line to
   the keep regions or to the boxes (with the frame's time and the track label). Without JavaScript the
   form still takes typed coordinates. */
(function () {
  "use strict";
  var holder = document.getElementById("still-frame");
  var img = document.getElementById("still");
  if (!holder || !img) { return; }
  holder.style.position = "relative";
  holder.style.display = "inline-block";
  holder.style.cursor = "crosshair";
  img.draggable = false;
  img.style.maxWidth = "100%";
  img.style.display = "block";
  var mark = document.createElement("div");
  mark.style.position = "absolute";
  mark.style.border = "2px solid #d00";
  mark.style.display = "none";
  mark.style.pointerEvents = "none";
  holder.appendChild(mark);
  var start = null;

  function at(event) {
    var box = img.getBoundingClientRect();
    return {x: Math.max(0, Math.min(box.width, event.clientX - box.left)),
            y: Math.max(0, Math.min(box.height, event.clientY - box.top)), w: box.width, h: box.height};
  }
  function show(a, b) {
    mark.style.left = Math.min(a.x, b.x) + "px";
    mark.style.top = Math.min(a.y, b.y) + "px";
    mark.style.width = Math.abs(a.x - b.x) + "px";
    mark.style.height = Math.abs(a.y - b.y) + "px";
    mark.style.display = "block";
  }
  holder.addEventListener("mousedown", function (event) { start = at(event); event.preventDefault(); });
  holder.addEventListener("mousemove", function (event) { if (start) { show(start, at(event)); } });
  window.addEventListener("mouseup", function (event) {
    if (!start) { return; }
    var end = at(event);
    var sx = img.naturalWidth / start.w, sy = img.naturalHeight / start.h;
    var x = Math.round(Math.min(start.x, end.x) * sx), y = Math.round(Math.min(start.y, end.y) * sy);
    var w = Math.round(Math.abs(start.x - end.x) * sx), h = Math.round(Math.abs(start.y - end.y) * sy);
    start = null;
    if (w < 4 || h < 4) { mark.style.display = "none"; return; }
    var rect = x + "," + y + "," + w + "," + h;
    var mode = document.querySelector("input[name=draw_as]:checked");
    var line = rect, target = document.getElementById("keep");
    if (mode && mode.value === "box") {
      var label = (document.getElementById("draw_label").value || "").replace(/[^A-Za-z0-9_-]/g, "");
      line = (label ? label + ":" : "") + holder.getAttribute("data-t") + ":" + rect;
      target = document.getElementById("boxes");
    }
    target.value = (target.value && !/\n$/.test(target.value) ? target.value + "\n" : target.value) + line;
  });
}());
