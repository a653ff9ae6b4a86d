// Builds the plotly.js bundle funnelboard serves (assets/plotly-funnelboard.min.js) the way plotly.js
// builds its own dist bundles (its esbuild-config.js), from index.js: the core and our trace types.
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
esbuild.build({
    entryPoints: ['./index.js'],
    outfile: process.argv[2] || '../../assets/plotly-funnelboard.min.js',
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    legalComments: 'none',
    plugins: [InlineCSSPlugin(), environmentPlugin({ NODE_DEBUG: false })],
    alias: { stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' },
    target: 'es2016',
    logLevel: 'info'
}).catch(() => process.exit(1));
