// Bundles src/main.js (and the CSS it imports) into appliance/web/static/dist/.
// Run by `make` in this folder; `node build.mjs --watch` rebuilds on change.
// Everything the page needs ends up in dist/: the device serves it all, with no network.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../static/dist");
const watch = process.argv.includes("--watch");

const options = {
  entryPoints: { main: path.join(here, "src/main.js") },
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome100", "firefox100", "safari15.4"],
  outdir,
  minify: !watch,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
  loader: { ".woff2": "file", ".svg": "file" },
};


if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log(`watching; output in ${outdir}`);
} else {
  await esbuild.build(options);
}
