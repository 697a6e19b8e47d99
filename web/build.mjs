// Builds the vendored GraphiQL bundle from the pinned packages in node_modules (npm ci first;
// scripts/refresh-web-assets.sh does both). Output: graphiql.js + graphiql.css, one licence file
// per package whose code ends up in the bundle, and VERSIONS.txt.
//
// GraphiQL 4 ships only ES modules and React 19 ships no UMD build, so a browser cannot load
// them from disk without a bundler; esbuild turns them into one classic script with no
// runtime imports, which is what an air-gapped site can serve from the Python package.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(process.argv[2] ?? path.join(here, '../landscape_graphql/static/graphiql'));
const pkg = JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8'));

for (const name of ['graphiql.js', 'graphiql.css', 'VERSIONS.txt']) fs.rmSync(path.join(outdir, name), { force: true });
fs.rmSync(path.join(outdir, 'licenses'), { recursive: true, force: true });
fs.mkdirSync(path.join(outdir, 'licenses'), { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { graphiql: 'src/graphiql-entry.jsx' },
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  jsx: 'automatic',
  target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  // Licences ship as files in licenses/; keeping them inline would only bloat the script.
  legalComments: 'none',
  sourcemap: false,
  // Fonts and images are inlined so the stylesheet never asks for another file.
  loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.resolve(here, p));
for (const file of outputs) {
  const text = fs.readFileSync(file, 'utf8');
  if (/sourceMappingURL/.test(text)) throw new Error(`${file} still names a source map`);
}

// Every npm package with at least one byte in the output, found from the metafile.
const packages = new Map();
for (const out of Object.values(result.metafile.outputs)) {
  for (const [input, info] of Object.entries(out.inputs)) {
    if (!info.bytesInOutput || !input.includes('node_modules/')) continue;
    let dir = path.dirname(path.resolve(here, input));
    while (!fs.existsSync(path.join(dir, 'package.json')) || !JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name) {
      dir = path.dirname(dir);
    }
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    packages.set(`${meta.name}@${meta.version}`, { dir, meta });
  }
}

const licenceRows = [];
for (const [id, { dir, meta }] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
  const declared = typeof meta.license === 'string' ? meta.license : (meta.license?.type ?? 'UNKNOWN');
  const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt|markdown))?$/i.test(f));
  const target = path.join(outdir, 'licenses', `${id.replace('/', '__')}.txt`);
  if (file) {
    fs.copyFileSync(path.join(dir, file), target);
  } else if (meta.name.startsWith('@graphiql/')) {
    // The @graphiql/* packages are published from the graphiql monorepo without a copy of its
    // LICENSE; graphiql's own package carries that text.
    const monorepo = fs.readFileSync(path.join(here, 'node_modules/graphiql/LICENSE'), 'utf8');
    fs.writeFileSync(target, `${id} (${declared}) is published from the graphiql monorepo, whose LICENSE is:\n\n${monorepo}`);
  } else {
    fs.writeFileSync(target, `${id} ships no licence file in its npm package; its package.json declares: ${declared}\n`);
  }
  licenceRows.push(`${id.padEnd(48)} ${declared}`);
}

const sha = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const lines = [
  'GraphiQL vendored for offline use (no CDN). Rebuild with scripts/refresh-web-assets.sh.',
  '',
  'Pinned in web/package.json (exact versions; web/package-lock.json pins the rest):',
  ...Object.entries({ ...pkg.dependencies, ...pkg.devDependencies }).map(([n, v]) => `  ${n} ${v}`),
  '',
  'Packages whose code is in the bundle (name@version, declared licence; texts in licenses/):',
  ...licenceRows.map((r) => `  ${r}`),
  '',
  'Built files (sha256):',
  ...outputs.map((f) => `  ${sha(f)}  ${path.basename(f)}`),
  '',
];
fs.writeFileSync(path.join(outdir, 'VERSIONS.txt'), lines.join('\n'));
for (const f of outputs) console.log(`${path.basename(f)}: ${(fs.statSync(f).size / 1024).toFixed(0)} KiB`);
console.log(`${packages.size} bundled packages, licences in ${path.join(outdir, 'licenses')}`);
