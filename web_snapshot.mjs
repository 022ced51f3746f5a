// Build step (run by web_build.py under Node): make the Python memory snapshot the page restores on its
// very first visit, so even a cold boot skips CPython's start-up and pyapp's imports (they are most of a
// cold boot: the interpreter's first run of that code goes through lazily compiled WebAssembly).
//
//     node web_snapshot.mjs <pyodide index dir> <pyapp.zip> <out file>
//
// The same Pyodide files the page loads, the same imports (web/app/snapshot.mjs); the page checks the
// snapshot's key (Pyodide version + pyapp.zip's sha256) and falls back to starting Python from scratch
// when a restore fails. Written to a temporary name first, then renamed: never a half-written file.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PYTHON_ENV, SNAPSHOT_PRELUDE } from "./web/app/snapshot.mjs";

const [indexDir, zipPath, outPath] = process.argv.slice(2);
if (!indexDir || !zipPath || !outPath) {
  console.error("usage: node web_snapshot.mjs <pyodide index dir> <pyapp.zip> <out file>");
  process.exit(2);
}
const indexURL = pathToFileURL(resolve(indexDir)).href + "/";
const { loadPyodide } = await import(indexURL + "pyodide.mjs");
const pyodide = await loadPyodide({ indexURL: resolve(indexDir) + "/", env: PYTHON_ENV, _makeSnapshot: true });
pyodide.unpackArchive(new Uint8Array(readFileSync(zipPath)), "zip", { extractDir: "." });
pyodide.runPython(SNAPSHOT_PRELUDE);
const bytes = pyodide.makeMemorySnapshot();
writeFileSync(outPath + ".tmp", bytes);
renameSync(outPath + ".tmp", outPath);
console.log(`web_snapshot: ${bytes.byteLength} bytes -> ${outPath}`);
