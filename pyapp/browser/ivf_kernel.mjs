// IVF arithmetic for the browser build without numpy: nearest centroid of many rows, and k-means training.
//
// Why JS: both are (rows x centroids) dot products, far too slow as per-element Python in Pyodide. The dot
// products reuse the vector kernel's Matrix (js_kernel.mjs: WebAssembly SIMD when dims is a multiple of 4), so
// centroid scores are float32 like the kernel's. Python (pyapp/browser/ivf_js.py) calls these with Uint8Array
// copies of float32 bytes and gets typed arrays back: one bridge crossing per call.

import { Matrix } from "./js_kernel.mjs";

const f32 = (u8) => new Float32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);

/** For `n` rows (float32 bytes): (nearest centroid, its cosine) pairs as a Float64Array of 2n values. */
export function nearest(centroids, u8, n) {
  const d = centroids.dims, v = f32(u8);
  if (v.length !== n * d) throw new RangeError(`expected ${n * d} floats, got ${v.length}`);
  const out = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const s = centroids.scoresOf(v.subarray(i * d, (i + 1) * d), null);
    let best = 0;
    for (let j = 1; j < s.length; j++) if (s[j] > s[best]) best = j;
    out[2 * i] = best;
    out[2 * i + 1] = s[best];
  }
  return out;
}

/**
 * Spherical k-means over `m` unit rows (float32 bytes): starts from the rows listed in `init` (Int32Array of
 * `nlist` distinct row numbers), `iterations` rounds of assign + mean + normalise; an empty list is re-seeded
 * with the row farthest from its centroid. Returns the unit centroids as float32 bytes (nlist x dims).
 */
export function kmeans(u8, m, dims, nlist, iterations, init) {
  const x = f32(u8);
  if (x.length !== m * dims) throw new RangeError(`expected ${m * dims} floats, got ${x.length}`);
  const cent = new Float32Array(nlist * dims);
  for (let k = 0; k < nlist; k++) cent.set(x.subarray(init[k] * dims, (init[k] + 1) * dims), k * dims);
  const matrix = new Matrix(dims);
  const sums = new Float64Array(nlist * dims);
  const counts = new Int32Array(nlist);
  const best = new Float32Array(m);
  for (let it = 0; it < iterations; it++) {
    matrix.load(new Uint8Array(cent.buffer), nlist);
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < m; i++) {
      const row = x.subarray(i * dims, (i + 1) * dims);
      const s = matrix.scoresOf(row, null);
      let b = 0;
      for (let j = 1; j < nlist; j++) if (s[j] > s[b]) b = j;
      best[i] = s[b];
      counts[b]++;
      const base = b * dims;
      for (let j = 0; j < dims; j++) sums[base + j] += row[j];
    }
    const farthest = Array.from(best.keys()).sort((a, b) => best[a] - best[b] || a - b);
    let reseed = 0;
    for (let k = 0; k < nlist; k++) {
      const base = k * dims;
      if (counts[k] === 0) {
        const r = farthest[reseed++ % m];
        for (let j = 0; j < dims; j++) sums[base + j] = x[r * dims + j];
      }
      let norm = 0;
      for (let j = 0; j < dims; j++) norm += sums[base + j] * sums[base + j];
      norm = Math.sqrt(norm) || 1;
      for (let j = 0; j < dims; j++) cent[base + j] = sums[base + j] / norm;
    }
  }
  return new Uint8Array(cent.buffer);
}

/**
 * Each IVF list's rows as an Int32Array, kept on the JS side so a query hands over only the numbers of the lists
 * it probes (`gather`) and gets one Int32Array back that the kernel's `topk` scans as is (no per-query list of
 * Python ints crossing the bridge). Python (`Partitions`) re-sends a list only after it changed.
 */
export class ListStore {
  constructor(nlist) {
    this.parts = new Array(nlist).fill(null);
  }

  put(list, rows) {
    this.parts[list] = rows;
  }

  get(list) {
    return this.parts[list];
  }

  gather(lists) {
    let total = 0;
    for (const l of lists) {
      const part = this.parts[l];
      if (part === null || part === undefined) throw new RangeError(`list ${l} has no rows copied`);
      total += part.length;
    }
    const out = new Int32Array(total);
    let at = 0;
    for (const l of lists) {
      out.set(this.parts[l], at);
      at += this.parts[l].length;
    }
    return out;
  }
}
