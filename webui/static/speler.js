// The recording page's player (opname.html): bookmark markers on a bar under the video, and the "next part"
// of a multi-part Axis recording. Only an opened player has these: the page renders them inside the player,
// which exists only after the purpose was named (and the view audited). A marker only moves that player.
(function () {
  "use strict";
  var video = document.getElementById("video");
  if (!video) return;

  var bar = document.getElementById("bladwijzers");
  if (bar) {
    var markers = bar.querySelectorAll("button[data-seconds]");
    var length = function () {
      return isFinite(video.duration) && video.duration > 0 ? video.duration : parseFloat(bar.dataset.duration) || 0;
    };
    var place = function () {
      var total = length();
      if (!total) return;
      markers.forEach(function (marker) {
        var share = Math.min(1, Math.max(0, parseFloat(marker.dataset.seconds) / total));
        marker.style.left = (100 * share) + "%";  // CSSOM, not a style attribute: allowed by the CSP
      });
      bar.classList.add("placed");
    };
    place();
    video.addEventListener("loadedmetadata", place);
    markers.forEach(function (marker) {
      marker.addEventListener("click", function () {
        video.currentTime = parseFloat(marker.dataset.seconds) || 0;
        video.focus();
      });
    });
  }

  // The next part: shown when this part ends; sent by itself when the viewer asked to watch on. Sending
  // it names the purpose again, so the next part gets its own audit entry before it plays.
  var next = document.getElementById("volgend-deel");
  if (next) {
    next.hidden = true;
    video.addEventListener("ended", function () {
      next.hidden = false;
      if (next.dataset.auto === "1") {
        next.submit();
      } else {
        next.querySelector("button").focus();
      }
    });
  }

  if (video.dataset.autoplay === "1") {
    var playing = video.play();
    if (playing && playing.catch) playing.catch(function () { /* the browser wants a click first */ });
  }
})();
