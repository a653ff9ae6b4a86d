'use strict';
// plotly.js core with only the trace types funnelboard draws; scatter comes with the core.
var Plotly = require('plotly.js/lib/core');
Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/funnel'),
    require('plotly.js/lib/waterfall'),
    require('plotly.js/lib/heatmap')
]);
module.exports = Plotly;
