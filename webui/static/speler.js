// The recording page's player (opname.html). Only an opened player has any of this: the page renders it
// only after the purpose was named and the view audited; nothing here asks for footage by itself.
// - Its own controls replace the browser's (which stay when scripts are off): play, frame step, speed,
//   sound, full screen, and a timeline in clock time: the camera's corrected time (data-start, the
//   recording's start_time) in the box's time zone, shown on the scale, while hovering and while playing.
// - Markers: the camera's bookmarks, and the stretches people watched before (the page renders only the
//   views this user may see; appliance/timeline.py decides).
// - Keys: space play/pause, arrows 5 s, comma/period one frame (the help line under the timeline says so).
// - It reports the stretches it played, for the next viewer's markers (POST .../afgespeeld, with the CSRF token).
// - The "next part" of a multi-part Axis recording.
(function () {
  "use strict";
  var video = document.getElementById("video");
  if (!video) return;
  var line = document.getElementById("tijdlijn");
  var SEEK_STEP = 5;        // seconds per arrow key
  var DEFAULT_FPS = 25;     // when the file did not say (PAL bodycams)

  if (line) {
    var start = Date.parse(line.dataset.start);
    var fps = parseFloat(line.dataset.fps) || DEFAULT_FPS;
    var range = document.getElementById("positie");
    var tip = document.getElementById("tijd-tip");
    var clock = document.getElementById("klok");
    var clockEnd = document.getElementById("klok-einde");
    var scale = document.getElementById("schaal");
    var play = document.getElementById("speel");
    var format;
    try {
      format = new Intl.DateTimeFormat(line.dataset.lang === "nl" ? "nl-NL" : "en-GB",
        {timeZone: line.dataset.tz || undefined, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
    } catch (e) {  // an unknown zone: the browser's own
      format = new Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
    }
    var clockAt = function (seconds) { return format.format(new Date(start + Math.floor(seconds) * 1000)); };
    var length = function () {
      return isFinite(video.duration) && video.duration > 0 ? video.duration : parseFloat(line.dataset.duration) || 0;
    };
    var seek = function (seconds) {
      video.currentTime = Math.min(Math.max(0, seconds), length());
      show();
    };

    var show = function () {
      var now = video.currentTime || 0;
      range.value = now;
      range.setAttribute("aria-valuetext", clockAt(now));
      clock.textContent = clockAt(now);
    };

    // The scale: the start and the end, and round clock times between them (every 1 s ... 1 h).
    var drawScale = function () {
      var total = length();
      if (!total) return;
      range.max = total;
      clockEnd.textContent = clockAt(total);
      scale.textContent = "";
      var label = function (seconds) {
        var mark = document.createElement("span");
        mark.textContent = clockAt(seconds);
        mark.dataset.seconds = seconds;
        mark.style.left = (100 * seconds / total) + "%";  // CSSOM, not a style attribute: allowed by the CSP
        scale.appendChild(mark);
      };
      var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
      var room = Math.max(2, Math.min(6, Math.floor(range.getBoundingClientRect().width / 90)));  // labels that fit
      var step = steps.filter(function (s) { return total / s <= room; })[0] || 7200;
      label(0);
      var first = Math.ceil(start / 1000 / step) * step - start / 1000;  // the first round clock time
      for (var t = first; t < total; t += step) {
        if (t > total * 0.12 && t < total * 0.88) label(t);
      }
      label(total);
    };

    var place = function () {
      var total = length();
      if (!total) return;
      line.querySelectorAll(".markers button[data-seconds]").forEach(function (marker) {
        var from = Math.min(total, Math.max(0, parseFloat(marker.dataset.seconds)));
        marker.style.left = (100 * from / total) + "%";
        if (marker.dataset.end) {
          marker.style.width = (100 * (Math.min(total, parseFloat(marker.dataset.end)) - from) / total) + "%";
        }
      });
      line.querySelectorAll(".markers").forEach(function (bar) { bar.classList.add("placed"); });
    };
    line.querySelectorAll(".markers button[data-seconds]").forEach(function (marker) {
      marker.addEventListener("click", function () { seek(parseFloat(marker.dataset.seconds) || 0); });
    });
    document.querySelectorAll(".clock-ranges[data-ranges]").forEach(function (cell) {
      cell.textContent = cell.dataset.ranges.split(";").map(function (pair) {
        var ends = pair.split("-");
        return clockAt(parseFloat(ends[0])) + "–" + clockAt(parseFloat(ends[1]));
      }).join(", ");
    });

    // Hovering the timeline shows the clock time under the pointer.
    range.addEventListener("mousemove", function (event) {
      var box = range.getBoundingClientRect();
      var share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      tip.textContent = clockAt(share * length());
      tip.style.left = (100 * share) + "%";
      tip.hidden = false;
    });
    range.addEventListener("mouseleave", function () { tip.hidden = true; });
    range.addEventListener("input", function () { seek(parseFloat(range.value) || 0); });

    var toggle = function () {
      if (video.paused || video.ended) {
        var started = video.play();
        if (started && started.catch) started.catch(function () { /* not playable yet */ });
      } else {
        video.pause();
      }
    };
    var frame = function (direction) {
      video.pause();
      seek((Math.round((video.currentTime || 0) * fps) + direction) / fps);  // on the frame grid, not drifting off it
    };
    var playing = function () {
      var label = video.paused ? play.dataset.play : play.dataset.pause;
      play.setAttribute("aria-label", label);
      play.title = label + " (" + "␣" + ")";
      play.firstElementChild.textContent = video.paused ? "▶" : "❚❚";
    };
    play.addEventListener("click", toggle);
    document.getElementById("beeld-terug").addEventListener("click", function () { frame(-1); });
    document.getElementById("beeld-verder").addEventListener("click", function () { frame(1); });
    var speed = function (button) {
      video.playbackRate = video.defaultPlaybackRate = parseFloat(button.dataset.speed);
      line.querySelectorAll("button[data-speed]").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
      try { sessionStorage.setItem("kluis-speler-snelheid", button.dataset.speed); } catch (e) { /* private mode */ }
    };
    line.querySelectorAll("button[data-speed]").forEach(function (button) {
      button.addEventListener("click", function () { speed(button); });
    });
    if (video.dataset.autoplay === "1") {  // the next part of a recording watched on: at the speed chosen for it
      var chosen = null;
      try { chosen = sessionStorage.getItem("kluis-speler-snelheid"); } catch (e) { /* private mode */ }
      var again = chosen && line.querySelector('button[data-speed="' + chosen.replace(/[^0-9.]/g, "") + '"]');
      if (again) speed(again);
    }
    var sound = document.getElementById("geluid");
    sound.addEventListener("click", function () {
      video.muted = !video.muted;
      sound.setAttribute("aria-pressed", video.muted ? "true" : "false");
    });
    var whole = document.getElementById("volledig");
    var section = document.getElementById("speler");
    if (section.requestFullscreen) {
      whole.addEventListener("click", function () {
        if (document.fullscreenElement) document.exitFullscreen(); else section.requestFullscreen();
      });
    } else {
      whole.hidden = true;
    }

    // Keys, wherever the focus is but in a field (space on a button presses that button, as ever).
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
      var target = event.target;
      var tag = target && target.tagName;
      if (target !== range && (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable)) return;
      var key = event.key;
      if (key === " " && (tag === "BUTTON" || tag === "A" || tag === "SUMMARY")) return;
      var actions = {
        " ": toggle,
        "ArrowLeft": function () { seek(video.currentTime - SEEK_STEP); },
        "ArrowRight": function () { seek(video.currentTime + SEEK_STEP); },
        ",": function () { frame(-1); },
        ".": function () { frame(1); },
        "Home": function () { seek(0); },
        "End": function () { seek(length()); }
      };
      if (!actions[key] || ((key === "Home" || key === "End") && target !== range && target !== video)) return;
      event.preventDefault();
      actions[key]();
    });

    // What was played, for the audit log (only when it grew since the last report).
    var reported = "";
    var report = function () {
      var parts = [];
      for (var i = 0; i < video.played.length; i++) {
        parts.push(video.played.start(i).toFixed(3) + "-" + video.played.end(i).toFixed(3));
      }
      var text = parts.join(";");
      if (!text || text === reported || !navigator.sendBeacon) return;
      var form = new FormData();
      form.append("csrf", line.dataset.csrf);
      form.append("ranges", text);
      if (navigator.sendBeacon(line.dataset.report, form)) reported = text;
    };
    video.addEventListener("pause", report);
    video.addEventListener("ended", report);
    window.addEventListener("pagehide", report);
    document.addEventListener("visibilitychange", function () { if (document.hidden) report(); });

    video.addEventListener("timeupdate", show);
    video.addEventListener("seeked", show);
    video.addEventListener("play", playing);
    video.addEventListener("pause", playing);
    video.addEventListener("loadedmetadata", function () { drawScale(); place(); show(); });
    window.addEventListener("resize", drawScale);
    video.controls = false;
    line.hidden = false;
    drawScale();
    place();
    show();
    playing();
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
    var started = video.play();
    if (started && started.catch) started.catch(function () { /* the browser wants a click first */ });
  }
})();
