/* Charts that fit their box. At any width a title of several lines that plotly draws partly above the
 * chart is moved down into a larger top margin. The charts are drawn on the server for any width; on
 * a narrow screen (a phone) this also fits each one once it is drawn (docs/dashboard.md, "Phone"):
 * - a title or a note (a paper annotation) wider than the room it has wraps at spaces, and the top
 *   margin grows by the lines it gained;
 * - a heatmap whose cells are narrower than their printed rates drops the printed rates (hover and
 *   the chart's data table still give them).
 * Once per figure drawn: a new figure from the server is fitted again, a fitted one is left alone; a
 * graph redrawn over and over (dcc.Graph re-plots with a copy of its figure) is fitted at most MAX_FITS
 * times, so a fit can never feed a loop of redraws.
 */
(function () {
  "use strict";

  var NARROW = 720;  // the stylesheet's phone width
  var GLYPH = 0.56;  // an average character's width as a share of the font size
  var MIN_CELL = 34;  // px a heatmap cell needs for "12.3%"
  var MAX_FITS = 30;
  var fitted = new WeakSet();
  // a break this file added (plotly reads any <br ...> as one): the chart's data table (a11y.js) reads it as a space
  var WRAP = "<br data-wrap>";  // as dashboard/figures/common.py::WRAP

  function shown(text) {
    // the characters a line of plotly's pseudo-HTML shows
    return text.replace(/<[^>]*>/g, "").replace(/&[a-z#0-9]+;/gi, "x").length;
  }

  function wrap(text, room) {
    // text with a break between words so that no line shows more than `room` characters; and how many lines it gained
    var gained = 0;
    // breaks made only for room (WRAP, here or on the server) are undone, then made again for this width
    var lines = String(text).split(WRAP).join(" ").split(/<br\s*\/?>/i).map(function (line) {
      if (shown(line) <= room) return line;
      var out = [], current = "";
      line.split(" ").forEach(function (word) {
        if (current && shown(current + " " + word) > room) {
          out.push(current);
          current = word;
        } else {
          current = current ? current + " " + word : word;
        }
      });
      out.push(current);
      gained += out.length - 1;
      return out.join(WRAP);
    });
    return {text: lines.join("<br>"), gained: gained};
  }

  function room(annotation, others, full) {
    // the width in px a paper annotation may use: to the next one on its right (or the edge)
    var plot = full._size, x = plot.l + annotation.x * plot.w;
    if (annotation.xanchor === "left") {
      var right = full.width;
      others.forEach(function (o) {
        var ox = plot.l + o.x * plot.w;
        if (o !== annotation && o.xref === "paper" && o.yref === "paper" && Math.abs(o.y - annotation.y) < 0.05 && ox > x) right = Math.min(right, ox - 8);
      });
      return right - x;
    }
    if (annotation.xanchor === "right") return x;
    return 2 * Math.min(x, full.width - x);
  }

  function lower(gd) {
    // a title of several lines drawn partly above the chart's top edge (plotly anchors such a title by
    // its first line): moved down by what is cut off; a title over a legend above the plot (a phone's
    // legend wraps into rows): the top margin grown by the overlap, which moves the plot and its legend
    // down under the title
    var title = gd.querySelector(".gtitle"), svg = gd.querySelector(".main-svg");
    if (!title || !svg) return;
    var edge = svg.getBoundingClientRect().top, box = title.getBoundingClientRect();
    var cut = Math.max(0, edge + 4 - box.top), overlap = 0;
    var legend = gd.querySelector(".legend");
    if (legend) {
      var l = legend.getBoundingClientRect();
      if (l.height && l.left < box.right && l.right > box.left && l.top < box.bottom + 4 && l.bottom > box.top) overlap = box.bottom + 4 - l.top;
    }
    if (cut <= 0 && overlap <= 0) return;
    var full = gd._fullLayout, update = {"margin.t": full.margin.t + cut + overlap};
    if (cut > 0) Object.assign(update, {"title.yref": "container", "title.yanchor": "top", "title.y": full.title.y - cut / full.height});
    return window.Plotly.relayout(gd, update);
  }

  function fit(gd) {
    if (!gd.layout || !gd._fullLayout || fitted.has(gd.layout)) return;
    fitted.add(gd.layout);
    gd._fbFits = (gd._fbFits || 0) + 1;
    if (gd._fbFits > MAX_FITS) return;
    if (window.innerWidth > NARROW) return lower(gd);
    Promise.resolve().then(function () {
      var full = gd._fullLayout, update = {}, top = 0;
      var title = gd.layout.title && (typeof gd.layout.title === "object" ? gd.layout.title.text : gd.layout.title);
      if (title) {
        var size = (full.title.font && full.title.font.size) || 16;
        var t = wrap(title, Math.floor((full.width - 24) / (size * GLYPH)));
        // a title already wrapped this way (dcc.Graph re-plots a copy of a fitted figure) has its margin already
        if (t.gained && t.text !== title) {
          update["title.text"] = t.text;
          top += t.gained * size * 1.25;
        }
      }
      var notes = gd.layout.annotations || [];
      var above = 0;
      notes.forEach(function (a, i) {
        if (a.xref !== "paper" || a.yref !== "paper" || a.x === undefined || !a.text) return;
        var size = (a.font && a.font.size) || 12;
        var w = wrap(a.text, Math.max(12, Math.floor(room(a, notes, full) / (size * GLYPH))));
        if (!w.gained || w.text === a.text) return;
        update["annotations[" + i + "].text"] = w.text;
        if (a.y >= 1) above = Math.max(above, w.gained * size * 1.25);
      });
      top += above;
      if (top) update["margin.t"] = full.margin.t + top;
      var narrow = [];
      (gd._fullData || []).forEach(function (trace, i) {
        var columns = trace.type === "heatmap" && trace.texttemplate && trace.z ? (trace.z[0] || []).length : 0;
        if (columns && full._size.w / columns < MIN_CELL) narrow.push(i);
      });
      var done = Object.keys(update).length ? window.Plotly.relayout(gd, update) : Promise.resolve();
      return done.then(function () {
        if (narrow.length) return window.Plotly.restyle(gd, {texttemplate: ""}, narrow);
      }).then(function () { return lower(gd); });
    });
  }

  function watch(gd) {
    if (gd._fbPhoneWatched || typeof gd.on !== "function") return;
    gd._fbPhoneWatched = true;
    gd.on("plotly_afterplot", function () { fit(gd); });
    fit(gd);
  }

  var pending = false;
  new MutationObserver(function () {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      document.querySelectorAll(".js-plotly-plot").forEach(watch);
    });
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
