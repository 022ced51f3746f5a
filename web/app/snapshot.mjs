// What goes into a Python memory snapshot (Pyodide's private _makeSnapshot/_loadSnapshot): shared by the
// page's worker (web/app/py-worker.mjs, which makes one at run time when the build shipped none) and the
// build step (web_snapshot.mjs under Node, run by web_build.py), so both snapshots hold the same heap.
//
// Why these modules: they are what worker.py imports before it first touches a JS object; restoring
// them saves CPython's start-up and those imports. Only modules that touch no JS object may be in it
// (pyapp.browser is imported afterwards), and random is reseeded after every restore.

export const SNAPSHOT_IMPORTS = [
  "asyncio", "json", "hashlib", "dataclasses", "typing", "array", "base64", "zipfile",
  "pyapp", "pyapp.notes", "pyapp.kernels", "pyapp.documents", "pyapp.tokenizer", "pyapp.embed.bundle",
  "pyapp.embed.base", "pyapp.embed.hashing", "pyapp.transfer",
];

/** Python run in an interpreter started with _makeSnapshot, once pyapp.zip is unpacked into its cwd. */
export const SNAPSHOT_PRELUDE =
  "import importlib, os, sys\nif os.getcwd() not in sys.path: sys.path.insert(0, os.getcwd())\n" +
  `for name in ${JSON.stringify(SNAPSHOT_IMPORTS)}:\n    importlib.import_module(name)\n`;

/** The options every interpreter of the app starts with (the snapshot's and the restored one's). */
export const PYTHON_ENV = { HOME: "/home/pyodide" };
