// The browser's vector kernel: a growable float32 matrix of L2-normalised rows and cosine top-k.
//
// Why not Python: per-element math in Pyodide's pure Python is orders of magnitude slower than JS
// (figures in docs/BENCHMARKS.md). Python calls these functions with Uint8Array copies of
// little-endian float32 bytes and gets typed arrays back, so nothing crosses the bridge element by element.
//
// The matrix lives in its own WebAssembly.Memory; when `dims` is a multiple of 4, dot products run
// in a tiny hand-assembled WebAssembly SIMD module (f32x4, several times faster than the JS loop), else in
// JS. Compiling it needs only the CSP's 'wasm-unsafe-eval', which Pyodide needs anyway.
// Scores are float32 (like the numpy kernel's), so "tied with the k-th score" means the same thing.

const f32 = (u8) => new Float32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);
const PAGE = 65536;

// ---------------------------------------------------------------- WebAssembly SIMD dot products
const leb = (n) => {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const name = (s) => [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
const vec = (items) => [...leb(items.length), ...items.flat()];
const I32 = 0x7f, V128 = 0x7b;
const get = (i) => [0x20, i], set = (i) => [0x21, i], tee = (i) => [0x22, i];
const i32c = (n) => [0x41, ...leb(n)];
const simd = (op, ...imm) => [0xfd, ...leb(op), ...imm];
const MEMARG = [2, 0]; // alignment hint 2^2, offset 0
const ADD = 0x6a, MUL = 0x6c, SHL = 0x74, LT_U = 0x49, EQZ = 0x45, BR_IF = 0x0d, END = 0x0b;
const BLOCK = [0x02, 0x40], LOOP = [0x03, 0x40];

/** acc = sum over j of data[p + j] * q[j] (f32x4 lanes); j steps 16 bytes up to rowBytes. */
const dotLoop = ({ q, p, j, acc, rowBytes }) => [
  ...simd(12, ...new Array(16).fill(0)), ...set(acc), ...i32c(0), ...set(j),
  ...LOOP,
  ...get(acc),
  ...get(p), ...get(j), ADD, ...simd(0, ...MEMARG), // v128.load
  ...get(q), ...get(j), ADD, ...simd(0, ...MEMARG),
  ...simd(230), ...simd(228), ...set(acc), // f32x4.mul, f32x4.add
  ...get(j), ...i32c(16), ADD, ...tee(j), ...get(rowBytes), LT_U, BR_IF, 0,
  END,
];

/** out[i] = horizontal sum of acc (f32.store). */
const storeSum = ({ out, i, acc }) => [
  ...get(out), ...get(i), ...i32c(2), SHL, ADD,
  ...get(acc), ...simd(31, 0), ...get(acc), ...simd(31, 1), 0x92,
  ...get(acc), ...simd(31, 2), 0x92, ...get(acc), ...simd(31, 3), 0x92,
  0x38, ...MEMARG,
];

function assemble() {
  // scores(data, q, out, n, rowBytes): every row. Locals: r=5, j=6, p=7, acc=8.
  const all = [
    ...get(0), ...set(7),
    ...BLOCK, ...get(3), EQZ, BR_IF, 0,
    ...LOOP,
    ...dotLoop({ q: 1, p: 7, j: 6, acc: 8, rowBytes: 4 }),
    ...storeSum({ out: 2, i: 5, acc: 8 }),
    ...get(7), ...get(4), ADD, ...set(7),
    ...get(5), ...i32c(1), ADD, ...tee(5), ...get(3), LT_U, BR_IF, 0,
    END, END, END,
  ];
  // scoresRows(data, q, rows, out, m, rowBytes): the listed rows. Locals: i=6, j=7, p=8, acc=9.
  const some = [
    ...BLOCK, ...get(4), EQZ, BR_IF, 0,
    ...LOOP,
    ...get(0), ...get(2), ...get(6), ...i32c(2), SHL, ADD, 0x28, ...MEMARG, ...get(5), MUL, ADD, ...set(8),
    ...dotLoop({ q: 1, p: 8, j: 7, acc: 9, rowBytes: 5 }),
    ...storeSum({ out: 3, i: 6, acc: 9 }),
    ...get(6), ...i32c(1), ADD, ...tee(6), ...get(4), LT_U, BR_IF, 0,
    END, END, END,
  ];
  const body = (code) => {
    const b = [...vec([[...leb(3), I32], [...leb(1), V128]]), ...code];
    return [...leb(b.length), ...b];
  };
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 5, I32, I32, I32, I32, I32, 0], [0x60, 6, I32, I32, I32, I32, I32, I32, 0]])),
    ...section(2, vec([[...name("env"), ...name("mem"), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([[...name("scores"), 0x00, 0], [...name("scoresRows"), 0x00, 1]])),
    ...section(10, vec([body(all), body(some)])),
  ]);
}

let simdModule = null; // WebAssembly.Module, or false when SIMD is unavailable

function getSimdModule() {
  if (simdModule === null) {
    try {
      const bytes = assemble();
      simdModule = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : false;
    } catch (_) {
      simdModule = false;
    }
  }
  return simdModule;
}

// ---------------------------------------------------------------- validation + normalisation

/** Validate `n` rows of `dims` floats in place: returns the first bad row (-1 when all good). */
export function prepare(u8, n, dims) {
  const v = f32(u8);
  if (v.length !== n * dims) throw new RangeError(`expected ${n * dims} floats, got ${v.length}`);
  for (let r = 0; r < n; r++) {
    const base = r * dims;
    const end = base + dims;
    let sum = 0;
    for (let j = base; j < end; j++) {
      const x = v[j];
      sum += x * x;
    }
    // One test per row instead of one per value: a NaN makes the sum NaN and an infinity makes it infinite
    // (float64 squares of float32 values cannot overflow); all zeros leave it 0.
    if (!(sum > 0 && sum < Infinity)) return r;
    const norm = Math.sqrt(sum);
    // Rows already unit-length to float32 precision stay bit-identical (as NumpyKernel): re-import is exact.
    if (Math.abs(norm - 1) <= 1e-6) continue;
    for (let j = base; j < end; j++) v[j] /= norm;
  }
  return -1;
}

/**
 * The bytes of a Python buffer (a PyProxy: bytes, bytearray, memoryview) as a Uint8Array over Pyodide's own
 * memory, no copy, passed to `use`; a Uint8Array is used as it is. Why: a bulk insert's 30 MB of vectors were
 * copied into JS and back; read in place they cross the bridge not at all. The view is valid only inside this
 * synchronous call (Python cannot run, so its memory cannot grow and move), and is released after it.
 * `aligned`: hand `use` a 4-byte aligned array (a copy, written back afterwards, in the rare case it is not).
 */
export function withPyBytes(buf, use, aligned = true) {
  if (buf instanceof Uint8Array) return use(buf);
  const view = buf.getBuffer("u8");
  try {
    const u8 = view.data;
    if (!aligned || u8.byteOffset % 4 === 0) return use(u8);
    const copy = u8.slice();
    const out = use(copy);
    if (!view.readonly) u8.set(copy);
    return out;
  } finally {
    view.release();
  }
}

/** `prepare` on a writable Python buffer (a bytearray), normalised where it lies. */
export function prepareInPlace(buf, n, dims) {
  return withPyBytes(buf, (u8) => prepare(u8, n, dims));
}

/** Rows holding an exact 0 or 1 (what a boolean converts to), so Python checks only those for booleans. */
export function suspectRows(u8, n, dims) {
  const v = f32(u8);
  const out = [];
  for (let r = 0; r < n; r++) {
    const base = r * dims;
    for (let j = 0; j < dims; j++) {
      const x = v[base + j];
      if (x === 0 || x === 1) {
        out.push(r);
        break;
      }
    }
  }
  return Int32Array.from(out);
}

// ---------------------------------------------------------------- top-k helpers

/**
 * The best `k` (score, row) pairs offered in ascending row order: a min-heap whose root is the worst kept pair
 * (lowest score, and of equal scores the highest row), so a later row with the same score never displaces it.
 * Scores are kept as float32, as the kernel compares them.
 */
class TopHeap {
  constructor(k) {
    this.k = k;
    this.size = 0;
    this.score = new Float32Array(k);
    this.row = new Int32Array(k);
  }

  worse(a, b) {
    return this.score[a] < this.score[b] || (this.score[a] === this.score[b] && this.row[a] > this.row[b]);
  }

  swap(a, b) {
    const s = this.score[a], r = this.row[a];
    this.score[a] = this.score[b]; this.row[a] = this.row[b];
    this.score[b] = s; this.row[b] = r;
  }

  offer(s, r) {
    if (this.size < this.k) {
      let c = this.size++;
      this.score[c] = s;
      this.row[c] = r;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.worse(c, p)) break;
        this.swap(c, p);
        c = p;
      }
    } else if (s > this.score[0]) { // both float32 values: equal scores compare equal, and the lower row stays
      this.score[0] = s;
      this.row[0] = r;
      for (let p = 0; ;) {
        const l = 2 * p + 1, rr = l + 1;
        let m = p;
        if (l < this.k && this.worse(l, m)) m = l;
        if (rr < this.k && this.worse(rr, m)) m = rr;
        if (m === p) break;
        this.swap(p, m);
        p = m;
      }
    }
  }

  /** The kept rows, best first (score descending, then row ascending). */
  sorted() {
    const idx = Array.from({ length: this.size }, (_, i) => i);
    idx.sort((a, b) => this.score[b] - this.score[a] || this.row[a] - this.row[b]);
    return Int32Array.from(idx, (i) => this.row[i]);
  }
}

/** The k-th largest score, via a size-k min-heap: O(n log k). */
function kthLargest(scores, k) {
  const heap = new Float32Array(k);
  let size = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (size < k) {
      let c = size++;
      heap[c] = s;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (heap[p] <= heap[c]) break;
        const t = heap[p]; heap[p] = heap[c]; heap[c] = t; c = p;
      }
    } else if (s > heap[0]) {
      heap[0] = s;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1, r = l + 1;
        let m = p;
        if (l < k && heap[l] < heap[m]) m = l;
        if (r < k && heap[r] < heap[m]) m = r;
        if (m === p) break;
        const t = heap[p]; heap[p] = heap[m]; heap[m] = t; p = m;
      }
    }
  }
  return heap[0];
}

// ---------------------------------------------------------------- the matrix

export class Matrix {
  constructor(dims) {
    if (!(Number.isInteger(dims) && dims > 0)) throw new RangeError("dims must be a positive integer");
    this.dims = dims;
    this.size = 0;
    this.capacity = 0;
    this.rowBytes = dims * 4;
    this.dataOff = Math.ceil(this.rowBytes / 16) * 16; // the query sits at offset 0
    this.memory = new WebAssembly.Memory({ initial: 1 });
    const module = dims % 4 === 0 ? getSimdModule() : false;
    this.wasm = module ? new WebAssembly.Instance(module, { env: { mem: this.memory } }).exports : null;
    this.view = null;
  }

  /** "wasm-simd" or "js": which loop computes the dot products. */
  get engine() {
    return this.wasm ? "wasm-simd" : "js";
  }

  /** A Float32Array over the whole memory, recreated after the memory grows (growing detaches it). */
  get f() {
    if (this.view === null || this.view.buffer !== this.memory.buffer) this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }

  ensureBytes(total) {
    const have = this.memory.buffer.byteLength;
    if (total > have) this.memory.grow(Math.ceil((total - have) / PAGE));
  }

  get scratchOff() {
    return this.dataOff + this.capacity * this.rowBytes;
  }

  reserve(rows) {
    if (rows <= this.capacity) return;
    const capacity = Math.max(rows, Math.floor(this.capacity * 1.5) + 16);
    this.ensureBytes(this.dataOff + capacity * this.rowBytes);
    this.capacity = capacity;
  }

  checkRow(row) {
    if (!(Number.isInteger(row) && row >= 0 && row < this.size)) {
      throw new RangeError(`row ${row} is out of range (size ${this.size})`);
    }
  }

  rowIndex(row) {
    return this.dataOff / 4 + row * this.dims;
  }

  load(u8, n) {
    const v = f32(u8);
    if (v.length !== n * this.dims) throw new RangeError(`expected ${n * this.dims} floats, got ${v.length}`);
    this.size = 0;
    this.reserve(n);
    this.f.set(v, this.rowIndex(0));
    this.size = n;
  }

  /** `load` from a Python buffer read in place (`withPyBytes`): one copy, into the matrix. */
  loadPy(buf, n) {
    withPyBytes(buf, (u8) => this.load(u8, n));
  }

  append(u8, n) {
    const v = f32(u8);
    if (v.length !== n * this.dims) throw new RangeError(`expected ${n * this.dims} floats, got ${v.length}`);
    this.reserve(this.size + n);
    this.f.set(v, this.rowIndex(this.size));
    this.size += n;
  }

  setRow(row, u8) {
    this.checkRow(row);
    const v = f32(u8);
    if (v.length !== this.dims) throw new RangeError(`expected ${this.dims} floats, got ${v.length}`);
    this.f.set(v, this.rowIndex(row));
  }

  swapRemove(row) {
    this.checkRow(row);
    const last = this.size - 1;
    if (row !== last) this.f.copyWithin(this.rowIndex(row), this.rowIndex(last), this.rowIndex(last + 1));
    this.size = last;
  }

  getRow(row) {
    this.checkRow(row);
    return new Uint8Array(this.f.slice(this.rowIndex(row), this.rowIndex(row + 1)).buffer);
  }

  /** Many rows (an Int32Array of row numbers) back to back: one bridge crossing for a listing. */
  getRows(rows) {
    const d = this.dims, f = this.f, out = new Float32Array(rows.length * d);
    for (let i = 0; i < rows.length; i++) {
      this.checkRow(rows[i]);
      const start = this.rowIndex(rows[i]);
      out.set(f.subarray(start, start + d), i * d);
    }
    return new Uint8Array(out.buffer);
  }

  toBytes() {
    return new Uint8Array(this.f.slice(this.rowIndex(0), this.rowIndex(this.size)).buffer);
  }

  /** float32 scores of `q` against `rows` (Int32Array) or every row when `rows` is null; a fresh array. */
  scoresOf(q, rows) {
    const d = this.dims;
    if (q.length !== d) throw new RangeError(`query has ${q.length} floats, the index ${d}`);
    const all = rows === null || rows === undefined;
    const m = all ? this.size : rows.length;
    if (!all) {
      for (let i = 0; i < m; i++) {
        const r = rows[i];
        if (!(r >= 0 && r < this.size)) throw new RangeError(`row ${r} is out of range (size ${this.size})`);
      }
    }
    const rowsOff = this.scratchOff;
    const outOff = rowsOff + (all ? 0 : m * 4);
    this.ensureBytes(outOff + m * 4);
    const f = this.f;
    f.set(q, 0);
    if (this.wasm) {
      if (all) this.wasm.scores(this.dataOff, 0, outOff, m, this.rowBytes);
      else {
        new Int32Array(this.memory.buffer, rowsOff, m).set(rows);
        this.wasm.scoresRows(this.dataOff, 0, rowsOff, outOff, m, this.rowBytes);
      }
      return f.slice(outOff / 4, outOff / 4 + m);
    }
    const out = new Float32Array(m);
    const base = this.dataOff / 4;
    for (let i = 0; i < m; i++) {
      const start = base + (all ? i : rows[i]) * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += f[start + j] * f[j];
      out[i] = s;
    }
    return out;
  }

  /** Top-k as a Float64Array of (row, score) pairs, best first, every row tied with the k-th included. */
  topk(u8, k, rows) {
    const scores = this.scoresOf(f32(u8), rows);
    const n = scores.length;
    if (n === 0 || k <= 0) return new Float64Array(0);
    const kth = k < n ? kthLargest(scores, k) : -Infinity;
    const picked = [];
    for (let i = 0; i < n; i++) if (scores[i] >= kth) picked.push(i);
    picked.sort((a, b) => scores[b] - scores[a] || a - b);
    const out = new Float64Array(picked.length * 2);
    for (let i = 0; i < picked.length; i++) {
      const p = picked[i];
      out[2 * i] = rows ? rows[p] : p;
      out[2 * i + 1] = scores[p];
    }
    return out;
  }

  /**
   * Exact top-k rows of each of `nq` queries (`u8`: their float32 values back to back), as an Int32Array of
   * nq * min(k, size) rows, each query's best first, ties by row: the first k rows `topk` answers for each. Why:
   * the IVF calibration needs the true neighbours of a few hundred of the index's own rows; one `topk` per query
   * reads the whole matrix from memory each time, while here each block of rows is scored against a group of
   * queries while it sits in the cache, and every query keeps a k-entry heap instead of a score per row.
   */
  topkMany(u8, nq, k) {
    const d = this.dims, n = this.size, q = f32(u8);
    if (q.length !== nq * d) throw new RangeError(`expected ${nq * d} query floats, got ${q.length}`);
    k = Math.min(k, n);
    const out = new Int32Array(nq * k);
    if (k <= 0) return out;
    const GROUP = 16, BLOCK = 256, rowBytes = this.rowBytes;
    for (let g0 = 0; g0 < nq; g0 += GROUP) {
      const g = Math.min(GROUP, nq - g0);
      const heaps = Array.from({ length: g }, () => new TopHeap(k));
      const qOff = this.scratchOff, sOff = qOff + g * rowBytes;
      this.ensureBytes(sOff + g * BLOCK * 4);
      const f = this.f; // after any growth
      f.set(q.subarray(g0 * d, (g0 + g) * d), qOff / 4);
      for (let b = 0; b < n; b += BLOCK) {
        const len = Math.min(BLOCK, n - b);
        for (let i = 0; i < g; i++) {
          const sIdx = sOff / 4 + i * BLOCK;
          if (this.wasm) {
            this.wasm.scores(this.dataOff + b * rowBytes, qOff + i * rowBytes, sOff + i * BLOCK * 4, len, rowBytes);
          } else {
            for (let r = 0; r < len; r++) {
              const start = this.rowIndex(b + r), qs = qOff / 4 + i * d;
              let s = 0;
              for (let j = 0; j < d; j++) s += f[start + j] * f[qs + j];
              f[sIdx + r] = s;
            }
          }
          const heap = heaps[i];
          for (let r = 0; r < len; r++) heap.offer(f[sIdx + r], b + r);
        }
      }
      for (let i = 0; i < g; i++) out.set(heaps[i].sorted(), (g0 + i) * k);
    }
    return out;
  }

  /** Scores of the query against the given rows, in the order given. */
  scores(u8, rows) {
    return new Float64Array(this.scoresOf(f32(u8), rows));
  }
}

// ---------------------------------------------------------------- filtered queries: code columns beside the matrix
//
// Why: a metadata filter evaluated in Pyodide's pure Python costs a dict lookup per row, more than the vector scan
// it narrows. The metadata table's dictionary-encoded columns (one int32 code per row, pyapp/metadata_table.py)
// are copied here once per change; a query then sends one match byte per *distinct* value and the rows are picked
// by one loop over the codes, so no row crosses the bridge.

/** Copies of code columns, by column uid, with the version they were copied at. */
export class CodeColumns {
  constructor() {
    this.cols = new Map();
  }

  /** The version held for column `uid` (-1 when none). */
  version(uid) {
    const c = this.cols.get(uid);
    return c ? c.version : -1;
  }

  /** Keep a copy of column `uid`'s codes (`u8`: little-endian int32 bytes) at `version`. */
  put(uid, version, u8) {
    const codes = new Int32Array(u8.buffer.slice(u8.byteOffset, u8.byteOffset + (u8.byteLength & ~3)));
    this.cols.set(uid, { version, codes });
  }
}

/**
 * Ascending rows of a matrix of `size` rows where, for every i, `luts[i][code]` is 1 for the row's code in column
 * `uids[i]` (the last two bytes of a lut answer a missing field, code -1, and a list/object, code -2).
 * Throws a RangeError when a column copy does not have `size` rows (the caller falls back).
 */
export function selectRows(columns, size, uids, luts) {
  let rows = null;
  let m = size;
  for (let c = 0; c < uids.length; c++) {
    const col = columns.cols.get(uids[c]);
    if (!col || col.codes.length !== size) throw new RangeError(`code column ${uids[c]} is missing or stale`);
    const codes = col.codes, lut = luts[c], miss = lut[lut.length - 2], complex = lut[lut.length - 1];
    const at = (code) => (code >= 0 ? lut[code] : code === -1 ? miss : complex);
    const out = new Int32Array(m);
    let k = 0;
    if (rows === null) {
      for (let r = 0; r < size; r++) {
        const code = codes[r];
        if ((code >= 0 ? lut[code] : at(code)) === 1) out[k++] = r;
      }
    } else {
      for (let i = 0; i < m; i++) {
        const r = rows[i], code = codes[r];
        if ((code >= 0 ? lut[code] : at(code)) === 1) out[k++] = r;
      }
    }
    rows = out.subarray(0, k);
    m = k;
  }
  return rows === null ? new Int32Array(0) : rows.slice();
}
