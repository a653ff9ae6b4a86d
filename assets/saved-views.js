/* The header's saved views (dashboard/saved_views.py): opening a view, or any other move to a new
 * address, folds the panel away (a <details>, which Dash does not track open or closed). */
(function () {
  "use strict";
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    savedViews: {
      close: function () {
        var panel = document.getElementById("sv-panel");
        if (panel) panel.open = false;
      },
    },
  });
})();
