/* funnelboard in the browser, for keyboard and screen-reader users (dashboard/a11y.py).
 *
 * - funnelboard.chartData: a chart's name and its numbers as Markdown tables, from the figure its page drew.
 * - funnelboard.toggle: the phone layout's menu and filter buttons open and close their panel.
 * - repair(): two attributes Dash 4's own components get wrong (axe-core: aria-allowed-attr on the date
 *   picker, aria-hidden-focus on the drop-down), set right without changing what a key press does.
 */
(function () {
  "use strict";

  var TYPED = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
               u2: Uint16Array, i1: Int8Array, u1: Uint8Array, u1c: Uint8ClampedArray};
  var MAX_ROWS = 500;
  var NUMBER = new Intl.NumberFormat("en-US", {maximumFractionDigits: 2});

  function decoded(spec) {
    // plotly.py sends numpy arrays as {dtype, bdata (base64), shape}
    var bytes = Uint8Array.from(atob(spec.bdata), function (c) { return c.charCodeAt(0); });
    var flat = Array.prototype.slice.call(new TYPED[spec.dtype](bytes.buffer));
    var shape = String(spec.shape || flat.length).split(",").map(Number);
    if (shape.length < 2) return flat;
    var rows = [];
    for (var i = 0; i < shape[0]; i++) rows.push(flat.slice(i * shape[1], (i + 1) * shape[1]));
    return rows;
  }

  function values(v) {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v.map(function (x) { return x && x.bdata !== undefined ? decoded(x) : x; });
    if (typeof v === "object" && v.bdata !== undefined) return decoded(v);
    return [v];
  }

  function plain(text) {
    // plotly's pseudo-HTML (titles, hover text) as plain text
    return String(text === undefined || text === null ? "" : text)
      .replace(/<br data-wrap>/gi, " ").replace(/<br\s*\/?>/gi, "; ").replace(/<[^>]*>/g, "")
      .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"").replace(/&#39;/g, "'").replace(/&amp;/g, "&")
      .replace(/\s+/g, " ").trim();
  }

  function titleOf(thing) {
    if (!thing) return "";
    return plain(typeof thing === "object" ? thing.text : thing);
  }

  function cell(value, axis) {
    if (value === undefined || value === null || (typeof value === "number" && isNaN(value))) return "—";
    if (typeof value === "number") {
      if (axis && /%/.test(axis.tickformat || "")) return (value * 100).toFixed(1) + "%";
      return NUMBER.format(value);
    }
    return plain(String(value).replace(/[T ]00:00:00(\.0+)?$/, ""));
  }

  function md(text) {
    // one cell of a Markdown table: nothing in it is read as Markdown or HTML
    return String(text).replace(/([\\`*_\[\]|<>#~])/g, "\\$1");
  }

  function table(caption, head, rows, total) {
    // Markdown, rendered by the dcc.Markdown under the chart: one string, not a component per cell
    var note = total > rows.length ? " (first " + NUMBER.format(rows.length) + " of " + NUMBER.format(total) + " rows)" : "";
    var line = function (cells) { return "| " + cells.map(md).join(" | ") + " |"; };
    return ["**" + md(caption + note) + "**", "", line(head), line(head.map(function () { return "---"; }))]
      .concat(rows.map(line)).join("\n");
  }

  function axis(layout, ref, letter) {
    var key = letter + "axis" + (ref && ref.length > 1 ? ref.slice(1) : "");
    return layout[key] || {};
  }

  function traceTable(trace, layout, caption) {
    var xa = axis(layout, trace.xaxis, "x"), ya = axis(layout, trace.yaxis, "y");
    if (trace.type === "heatmap") {
      var z = values(trace.z), xs = values(trace.x), ys = values(trace.y);
      var head = [titleOf(ya.title) || ""].concat(xs.map(function (x) { return cell(x, xa); }));
      var rows = z.slice(0, MAX_ROWS).map(function (row, i) {
        return [cell(ys[i], ya)].concat(values(row).map(function (v) { return cell(v, trace.zhoverformat && /%/.test(trace.zhoverformat) ? {tickformat: "%"} : null); }));
      });
      return table(caption, head, rows, z.length);
    }
    var horizontal = trace.orientation === "h" || (trace.type === "funnel" && trace.orientation !== "v");
    var cats = values(horizontal ? trace.y : trace.x), nums = values(horizontal ? trace.x : trace.y);
    var catAxis = horizontal ? ya : xa, numAxis = horizontal ? xa : ya;
    var n = Math.max(cats.length, nums.length);
    var hover = values(trace.hovertext !== undefined ? trace.hovertext : trace.text);
    var details = hover.length === n && hover.some(function (h) { return plain(h); });
    var header = [titleOf(catAxis.title) || (horizontal ? "Category" : "x"), titleOf(numAxis.title) || "Value"];
    if (details) header.push("Details");
    var rows = [];
    for (var i = 0; i < n && rows.length < MAX_ROWS; i++) {
      if ((cats[i] === null || cats[i] === undefined) && (nums[i] === null || nums[i] === undefined)) continue;  // a gap between lines
      var row = [cell(cats[i], catAxis), cell(nums[i], numAxis)];
      if (details) row.push(plain(hover[i]));
      rows.push(row);
    }
    return table(caption, header, rows, n);
  }

  function chartData(figure) {
    var nu = window.dash_clientside.no_update;
    if (!figure || !figure.data) return [nu, nu, nu];
    var layout = figure.layout || {};
    var name = titleOf(layout.title);
    var notes = (layout.annotations || []).map(function (a) { return plain(a.text); }).filter(Boolean);
    if (!name) name = notes[0] || "Chart";
    // hoverinfo "none" marks a trace drawn only to be clicked (the funnel's click areas): no data of its own
    var traces = figure.data.filter(function (t) {
      return t.visible !== false && t.visible !== "legendonly" && t.hoverinfo !== "none";
    });
    var tables = traces.map(function (t, i) {
      var caption = traces.length === 1 ? name : (plain(t.name) || "Series " + (i + 1));
      return traceTable(t, layout, caption);
    });
    var body = tables.length ? tables.join("\n\n") : md(notes.join(" ") || "Nothing drawn.");
    return [name, "Data: " + name, body];
  }

  var initialPath = window.location.pathname;
  var lastPath = {};

  function toggle(clicks, pathname, className) {
    var ctx = window.dash_clientside.callback_context;
    var key = JSON.stringify(ctx.outputs_list[0].id);
    var classes = (className || "").split(/\s+/).filter(function (c) { return c; });
    var open = classes.indexOf("open") >= 0;
    var clicked = ctx.triggered.some(function (t) { return /\.n_clicks$/.test(t.prop_id); });
    var before = key in lastPath ? lastPath[key] : initialPath;
    lastPath[key] = pathname;
    if (clicked) open = !open;
    else if (pathname !== before) open = false;  // another page: fold the panel away
    else return [window.dash_clientside.no_update, window.dash_clientside.no_update];
    classes = classes.filter(function (c) { return c !== "open"; });
    if (open) classes.push("open");
    return [classes.join(" "), open ? "true" : "false"];
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.funnelboard = {chartData: chartData, toggle: toggle};

  function repair() {
    // The date picker's trigger is a <div> with aria-expanded: a group may carry it.
    document.querySelectorAll(".dash-datepicker-input-wrapper:not([role])").forEach(function (w) {
      w.setAttribute("role", "group");
    });
    // The drop-down puts the tab stop on a hidden <input> that forwards focus to its button; put the
    // tab stop on the (named) button itself, so no focusable element is hidden from screen readers.
    document.querySelectorAll(".dash-dropdown-focus-target").forEach(function (sentinel) {
      var button = sentinel.nextElementSibling;
      if (sentinel.tabIndex !== -1) sentinel.tabIndex = -1;
      if (button && button.tagName === "BUTTON" && !button.disabled && button.tabIndex !== 0) button.tabIndex = 0;
    });
  }

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; repair(); });
  }
  new MutationObserver(schedule).observe(document.documentElement,
    {subtree: true, childList: true, attributes: true, attributeFilter: ["tabindex", "role"]});
  schedule();
})();
