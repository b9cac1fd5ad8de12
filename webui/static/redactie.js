/* The redaction editor (redactie.html): scrub the video, drag (mouse, pen or finger) boxes to blur at a moment or regions to keep,
   click a detected face to keep it, and see tracks, keyframes and keep regions on a timeline.

   The advanced text fields (#keep, #boxes) ARE the region spec: drawing writes lines into them in the
   syntax the server reads (appliance/redaction/plan.py), and what is shown is parsed back from them. So
   drawing and typing submit the same spec, and the form works without this script. Coordinates are the
   video's own pixels (videoWidth x videoHeight), whatever size the picture is shown at. */
(function () {
  "use strict";
  var editor = document.getElementById("editor");
  var video = document.getElementById("video");
  if (!editor || !video) { return; }
  var overlay = document.getElementById("overlay");
  var keepField = document.getElementById("keep");
  var boxesField = document.getElementById("boxes");
  var muteField = document.getElementById("mute");
  var formT = document.getElementById("form_t");
  var scrub = document.getElementById("scrub");
  var now = document.getElementById("now");
  var timeline = document.getElementById("timeline");
  var list = document.getElementById("regions");
  var trackSelect = document.getElementById("draw_track");
  var facesStatus = document.getElementById("faces_status");
  var L = editor.dataset;  // the page's words, in the user's language (data-l-*)
  var NUM = "(\\d+(?:[.,]\\d+)?)";
  var RECT = "(-?\\d+),(-?\\d+),(\\d+),(\\d+)";
  var KEEP_RE = new RegExp("^(?:" + NUM + "\\s*-\\s*" + NUM + ":)?" + RECT + "$");
  var BOX_RE = new RegExp("^(?:([^:]+):)?" + NUM + ":" + RECT + "$");
  var faces = [];     // the faces found in the frame at facesAt
  var facesAt = null;
  var dragStart = null;
  var band = null;

  function num(text) { return parseFloat(String(text).replace(",", ".")); }
  function fmt(t) { return String(Math.round(t * 1000) / 1000); }
  function shown(t) { return (Math.round(t * 100) / 100).toFixed(2).replace(".", ",") + " s"; }
  function duration() { return isFinite(video.duration) && video.duration > 0 ? video.duration : 0; }
  // one entry per line of the field (the indexes are the lines'), so that a line can be replaced or removed
  function lines(field) { return field.value.split("\n").map(function (s) { return s.trim(); }); }
  function rectOf(m, i) { return {x: +m[i], y: +m[i + 1], w: +m[i + 2], h: +m[i + 3]}; }

  // The spec, read from the fields -----------------------------------------------------------------
  function parse() {
    var spec = {keep: [], tracks: {}, order: [], mute: [], unread: []};
    lines(keepField).forEach(function (line, index) {
      if (!line) { return; }
      var m = KEEP_RE.exec(line);
      if (!m) { spec.unread.push(line); return; }
      spec.keep.push({index: index, from: m[1] ? num(m[1]) : null, to: m[2] ? num(m[2]) : null, rect: rectOf(m, 3)});
    });
    var n = 0;
    lines(boxesField).forEach(function (line, index) {
      if (!line) { return; }
      n += 1;  // an unlabelled box is a track of its own, named as the server names it
      var m = BOX_RE.exec(line);
      if (!m || (m[1] && /^\d+([.,]\d+)?$/.test(m[1]))) { spec.unread.push(line); return; }
      var label = m[1] ? m[1].trim() : "box" + n;
      var r = rectOf(m, 3);
      if (!spec.tracks[label]) { spec.tracks[label] = []; spec.order.push(label); }
      spec.tracks[label].push({index: index, t: num(m[2]), rect: r.w > 0 && r.h > 0 ? r : null});
    });
    spec.order.forEach(function (label) { spec.tracks[label].sort(function (a, b) { return a.t - b.t; }); });
    lines(muteField).forEach(function (line, index) {
      if (!line) { return; }
      var m = new RegExp("^" + NUM + "\\s*-\\s*" + NUM + "$").exec(line);
      if (m) { spec.mute.push([num(m[1]), num(m[2]), index]); } else { spec.unread.push(line); }
    });
    return spec;
  }

  // Where a track's box is at t, as the job computes it (appliance/redaction/faces.py Track.rect_at):
  // between two keyframes it moves evenly; after the last one the job follows the content.
  function trackAt(keys, t) {
    if (!keys.length || t < keys[0].t - 1e-6) { return null; }
    var i = 0;
    keys.forEach(function (k, n) { if (k.t <= t + 1e-6) { i = n; } });
    var here = keys[i], next = keys[i + 1];
    if (!here.rect) { return null; }
    if (next && next.rect) {
      var f = next.t > here.t ? (t - here.t) / (next.t - here.t) : 0;
      return {rect: {x: here.rect.x + (next.rect.x - here.rect.x) * f, y: here.rect.y + (next.rect.y - here.rect.y) * f,
                     w: here.rect.w + (next.rect.w - here.rect.w) * f, h: here.rect.h + (next.rect.h - here.rect.h) * f},
              followed: false};
    }
    return {rect: here.rect, followed: true};  // to the end, or to the marker that ends the track
  }
  function keepActive(k, t) { return (k.from === null || t >= k.from) && (k.to === null || t < k.to); }

  // Editing the fields ------------------------------------------------------------------------------
  function append(field, line) {
    field.value = (field.value && !/\n$/.test(field.value) ? field.value + "\n" : field.value) + line;
    changed();
  }
  function replaceLine(field, index, line) {
    var all = field.value.split("\n");
    if (line === null) { all.splice(index, 1); } else { all[index] = line; }
    field.value = all.join("\n");
    changed();
  }
  function rectText(r) { return Math.round(r.x) + "," + Math.round(r.y) + "," + Math.round(r.w) + "," + Math.round(r.h); }
  function newTrackLabel(spec) {
    var n = 1;
    while (spec.tracks["kader" + n]) { n += 1; }
    return "kader" + n;
  }

  // Drawing: the overlay lies exactly on the picture; its size over the video's pixels is the scale.
  function toVideo(event) {
    var box = overlay.getBoundingClientRect();
    var sx = (video.videoWidth || box.width) / box.width, sy = (video.videoHeight || box.height) / box.height;
    return {x: Math.max(0, Math.min(box.width, event.clientX - box.left)) * sx,
            y: Math.max(0, Math.min(box.height, event.clientY - box.top)) * sy};
  }
  function place(el, r) {  // CSSOM, not a style attribute: allowed by the page's CSP
    var vw = video.videoWidth || 1, vh = video.videoHeight || 1;
    el.style.left = (100 * r.x / vw) + "%";
    el.style.top = (100 * r.y / vh) + "%";
    el.style.width = (100 * r.w / vw) + "%";
    el.style.height = (100 * r.h / vh) + "%";
  }
  overlay.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 || event.target !== overlay) { return; }
    video.pause();
    dragStart = toVideo(event);
    band = mark("band");
    overlay.appendChild(band);
    event.preventDefault();
  });
  window.addEventListener("pointermove", function (event) {
    if (!dragStart) { return; }
    var p = toVideo(event);
    place(band, {x: Math.min(dragStart.x, p.x), y: Math.min(dragStart.y, p.y),
                 w: Math.abs(p.x - dragStart.x), h: Math.abs(p.y - dragStart.y)});
  });
  window.addEventListener("pointerup", function (event) {
    if (!dragStart) { return; }
    var p = toVideo(event), a = dragStart;
    dragStart = null;
    if (band) { band.remove(); band = null; }
    var r = {x: Math.round(Math.min(a.x, p.x)), y: Math.round(Math.min(a.y, p.y)),
             w: Math.round(Math.abs(p.x - a.x)), h: Math.round(Math.abs(p.y - a.y))};
    if (r.w < 4 || r.h < 4) { return; }
    var mode = document.querySelector("input[name=draw_as]:checked");
    if (mode && mode.value === "keep") {
      append(keepField, rectText(r));
    } else {
      var label = trackSelect.value || newTrackLabel(parse());
      append(boxesField, label + ":" + fmt(video.currentTime) + ":" + rectText(r));
      trackSelect.value = label;
    }
  });

  // Faces: the job's detector on the frame shown; a click keeps one (a region around it, whole recording).
  document.getElementById("find_faces").addEventListener("click", function () {
    video.pause();
    var t = video.currentTime;
    facesStatus.textContent = "…";
    fetch("/opnames/" + L.recording + "/redigeren/gezichten?bekijk=" + encodeURIComponent(L.grant) + "&t=" + fmt(t),
          {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {failed: true}; })
      .catch(function () { return {failed: true}; })
      .then(function (found) {
        faces = found.faces || [];
        facesAt = t;
        facesStatus.textContent = found.failed ? L.lFacefail : (faces.length ? "" : L.lNoface);
        draw();
      });
  });

  // Showing ---------------------------------------------------------------------------------------
  function div(cls, text) { var el = document.createElement("div"); el.className = cls; if (text) { el.textContent = text; } return el; }
  function mark(cls, text) { var el = div(cls, text); el.setAttribute("aria-hidden", "true"); return el; }  // the list says it
  function button(text, cls, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (cls) { b.className = cls; }
    b.addEventListener("click", action);
    return b;
  }
  function seek(t) { video.pause(); video.currentTime = Math.max(0, Math.min(duration() || t, t)); }

  function draw() {
    var spec = parse(), t = video.currentTime;
    Array.prototype.slice.call(overlay.children).forEach(function (el) { if (el !== band) { el.remove(); } });
    spec.keep.forEach(function (k) {
      if (!keepActive(k, t)) { return; }
      var el = mark("keep", L.lKeep);
      place(el, k.rect);
      overlay.appendChild(el);
    });
    spec.order.forEach(function (label) {
      var at = trackAt(spec.tracks[label], t);
      if (!at) { return; }
      var el = mark("box" + (at.followed ? " followed" : ""), label);
      place(el, at.rect);
      overlay.appendChild(el);
    });
    if (facesAt !== null && Math.abs(facesAt - t) < 0.05) {
      faces.forEach(function (f, n) {
        var b = button(L.lFace, "face", function () {
          append(keepField, f.keep.join(","));
          faces.splice(n, 1);
          draw();
        });
        place(b, {x: f.rect[0], y: f.rect[1], w: f.rect[2], h: f.rect[3]});
        overlay.appendChild(b);
      });
    }
    drawTimeline(spec, t);
  }

  function at(t) { var d = duration(); return d ? (100 * Math.max(0, Math.min(d, t)) / d) + "%" : "0%"; }
  function row(label, t) {
    var r = div("row");
    r.appendChild(div("label", label));
    var lane = div("lane"), head = div("playhead");
    head.style.left = at(t);
    lane.appendChild(head);
    lane.addEventListener("click", function (event) {  // a click on a lane moves to that moment
      if (event.target !== lane || !duration()) { return; }
      var box = lane.getBoundingClientRect();
      seek(duration() * (event.clientX - box.left) / box.width);
    });
    r.appendChild(lane);
    timeline.appendChild(r);
    return lane;
  }
  function axis() {  // seconds under the lanes: start, quarters, end
    var r = div("row axis"), lane = div("lane"), d = duration();
    r.appendChild(div("label", L.lTime));
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var tick = div("tick", shown(d * f));
      tick.style.left = (100 * f) + "%";
      lane.appendChild(tick);
    });
    r.appendChild(lane);
    timeline.appendChild(r);
  }
  function drawTimeline(spec, t) {
    timeline.textContent = "";
    spec.order.forEach(function (label) {
      var lane = row(label, t), keys = spec.tracks[label];
      keys.forEach(function (k, n) {
        var next = n + 1 < keys.length ? keys[n + 1] : null;
        if (k.rect && next) {  // moves evenly to the next box, or is followed up to the marker that ends it
          var span = div("span track" + (next.rect ? "" : " followed"));
          span.style.left = at(k.t);
          span.style.width = "calc(" + at(next.t) + " - " + at(k.t) + ")";
          lane.appendChild(span);
        } else if (k.rect) {
          var rest = div("span track followed");
          rest.style.left = at(k.t);
          rest.style.right = "0";
          lane.appendChild(rest);
        }
        var mark = button("", "keyframe" + (k.rect ? "" : " end"), function () { seek(k.t); });
        mark.setAttribute("aria-label", label + " " + shown(k.t) + (k.rect ? "" : " (" + L.lEnds + ")"));
        mark.style.left = at(k.t);
        lane.appendChild(mark);
      });
    });
    if (spec.keep.length) {
      var lane = row(L.lKeeprow, t);
      spec.keep.forEach(function (k) {
        var span = div("span keep");
        span.style.left = at(k.from === null ? 0 : k.from);
        span.style.width = "calc(" + at(k.to === null ? duration() : k.to) + " - " + at(k.from === null ? 0 : k.from) + ")";
        lane.appendChild(span);
      });
    }
    if (spec.mute.length) {
      var muted = row(L.lMute, t);
      spec.mute.forEach(function (m) {
        var span = div("span mute");
        span.style.left = at(m[0]);
        span.style.width = "calc(" + at(m[1]) + " - " + at(m[0]) + ")";
        muted.appendChild(span);
      });
    }
    if (!timeline.firstChild) { row("", t); }  // the playhead on an empty timeline
    if (duration()) { axis(); }
  }

  function drawList() {
    var spec = parse(), current = trackSelect.value;
    list.textContent = "";
    trackSelect.length = 1;
    spec.order.forEach(function (label) {
      var option = document.createElement("option");
      option.value = label;
      option.textContent = L.lTrack + " " + label;
      trackSelect.appendChild(option);
      spec.tracks[label].forEach(function (k) {
        var li = document.createElement("li");
        li.appendChild(document.createTextNode(L.lBox + " " + label + ", " + shown(k.t) +
          (k.rect ? ": " + rectText(k.rect) : " (" + L.lEnds + ")") + " "));
        li.appendChild(button(shown(k.t), "", function () { seek(k.t); }));
        li.appendChild(button(L.lRemove, "", function () { replaceLine(boxesField, k.index, null); }));
        list.appendChild(li);
      });
      var last = spec.tracks[label][spec.tracks[label].length - 1];
      if (last.rect) {
        var li = document.createElement("li");
        li.appendChild(document.createTextNode(label + ": " + L.lFollowed + " "));
        li.appendChild(button(L.lEnd, "", function () {
          append(boxesField, label + ":" + fmt(video.currentTime) + ":0,0,0,0");
        }));
        list.appendChild(li);
      }
    });
    trackSelect.value = spec.tracks[current] ? current : "";
    spec.keep.forEach(function (k) {
      var li = document.createElement("li");
      var when = k.from === null && k.to === null ? L.lWhole : shown(k.from || 0) + " – " + (k.to === null ? "…" : shown(k.to));
      li.appendChild(document.createTextNode(L.lKeep + " " + rectText(k.rect) + " (" + when + ") "));
      var set = function (from, to) {
        var range = from === null && to === null ? "" : fmt(from || 0) + "-" + fmt(to === null ? (duration() || 86400) : to) + ":";
        replaceLine(keepField, k.index, range + rectText(k.rect));
      };
      li.appendChild(button(L.lFrom, "", function () { set(video.currentTime, k.to); }));
      li.appendChild(button(L.lUntil, "", function () { set(k.from, video.currentTime); }));
      li.appendChild(button(L.lRemove, "", function () { replaceLine(keepField, k.index, null); }));
      list.appendChild(li);
    });
    spec.mute.forEach(function (m) {
      var li = document.createElement("li");
      li.appendChild(document.createTextNode(L.lMute + " " + shown(m[0]) + " – " + shown(m[1]) + " "));
      li.appendChild(button(L.lRemove, "", function () { replaceLine(muteField, m[2], null); }));
      list.appendChild(li);
    });
    spec.unread.forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line + ": " + L.lUnread;
      list.appendChild(li);
    });
  }

  function changed() { drawList(); draw(); }

  // Muting: a range from the moment the button is pressed to the moment it is pressed again.
  var muteButton = document.getElementById("mute_here");
  var muteFrom = null;
  muteButton.addEventListener("click", function () {
    var t = video.currentTime;
    if (muteFrom === null) {
      muteFrom = t;
      muteButton.textContent = muteButton.dataset.lStop;
      muteButton.setAttribute("aria-pressed", "true");
      return;
    }
    var a = Math.min(muteFrom, t), b = Math.max(muteFrom, t);
    muteFrom = null;
    muteButton.textContent = muteButton.dataset.lStart;
    muteButton.setAttribute("aria-pressed", "false");
    if (b - a >= 0.05) { append(muteField, fmt(a) + "-" + fmt(b)); }
  });

  // The player's controls ---------------------------------------------------------------------------
  var play = document.getElementById("play");
  play.addEventListener("click", function () { if (video.paused) { video.play(); } else { video.pause(); } });
  document.getElementById("step_back").addEventListener("click", function () { seek(video.currentTime - 0.1); });
  document.getElementById("step_fwd").addEventListener("click", function () { seek(video.currentTime + 0.1); });
  scrub.addEventListener("input", function () { seek(num(scrub.value)); });
  function moved() {
    scrub.value = video.currentTime;
    now.textContent = shown(video.currentTime);
    formT.value = fmt(video.currentTime);
    draw();
  }
  // Keys, when no field or button has the focus: space plays or pauses, the arrows step.
  document.addEventListener("keydown", function (event) {
    var focus = document.activeElement;
    if (event.altKey || event.ctrlKey || event.metaKey ||
        (focus && /^(INPUT|SELECT|TEXTAREA|BUTTON|A|SUMMARY)$/.test(focus.tagName))) { return; }
    if (event.key === " ") { play.click(); } else if (event.key === "ArrowLeft") { seek(video.currentTime - 0.1); }
    else if (event.key === "ArrowRight") { seek(video.currentTime + 0.1); } else { return; }
    event.preventDefault();
  });
  video.addEventListener("play", function () { play.textContent = L.lPause; });
  video.addEventListener("pause", function () { play.textContent = L.lPlay; });
  video.addEventListener("timeupdate", moved);
  video.addEventListener("seeked", moved);
  video.addEventListener("durationchange", function () { scrub.max = duration(); });
  video.addEventListener("loadedmetadata", function () {
    scrub.max = duration();
    var start = num(L.t || "0");
    if (start > 0) { video.currentTime = Math.min(start, duration()); }
    changed();
    moved();
  });
  [keepField, boxesField, muteField].forEach(function (field) { field.addEventListener("input", changed); });
  changed();
}());
