// The arithmetic of fitting a label model in the page: softmax cross-entropy + L2 over every training row, and
// the small vector steps of L-BFGS (pyapp/labels/optim.py).
//
// Why JS: the pure-Python objective costs seconds per evaluation for a few hundred 384-d rows, and L-BFGS needs
// dozens. Python (pyapp/browser/js_label_ops.py) sends the rows here once; parameter vectors then live here as
// Float64Arrays that Python only holds handles to, so each evaluation or vector step is one call and nothing is
// copied per element. Arithmetic is float64 throughout, in the same order of operations as NumpyOps
// (pyapp/labels/linalg.py), so both backends reach the same model.

const f64 = (u8) => new Float64Array(u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength));

export class LabelOps {
  /** rows: float64 bytes (n x d, already unit length); targets: int32 bytes (n); k labels; l2 penalty. */
  constructor(rows, targets, n, d, k, l2) {
    this.x = f64(rows);
    this.y = new Int32Array(targets.buffer.slice(targets.byteOffset, targets.byteOffset + targets.byteLength));
    if (this.x.length !== n * d || this.y.length !== n) throw new RangeError("rows or targets have the wrong size");
    Object.assign(this, { n, d, k, l2 });
    this.z = new Float64Array(k);
    this.resid = new Float64Array(n * k);
  }

  /** theta: Float64Array (k*d weights, then k biases) -> the gradient (a new Float64Array); the loss is left
   * in `this.loss` (one call per evaluation, no tuple to convert). */
  lossGrad(theta) {
    const { x, y, n, d, k, l2, z, resid } = this;
    if (theta.length !== k * (d + 1)) throw new RangeError(`theta has ${theta.length} values, want ${k * (d + 1)}`);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const off = i * d;
      let top = -Infinity;
      for (let c = 0; c < k; c++) {
        const w = c * d;
        let s = 0;
        for (let j = 0; j < d; j++) s += x[off + j] * theta[w + j];
        z[c] = s + theta[k * d + c];
        if (z[c] > top) top = z[c];
      }
      let sum = 0;
      for (let c = 0; c < k; c++) sum += Math.exp(z[c] - top);
      loss += top + Math.log(sum) - z[y[i]];
      for (let c = 0; c < k; c++) resid[i * k + c] = Math.exp(z[c] - top) / sum;
      resid[i * k + y[i]] -= 1;
    }
    const g = new Float64Array(k * (d + 1));
    for (let i = 0; i < n; i++) {
      const off = i * d;
      for (let c = 0; c < k; c++) {
        const r = resid[i * k + c];
        if (r === 0) continue;
        const w = c * d;
        for (let j = 0; j < d; j++) g[w + j] += r * x[off + j];
        g[k * d + c] += r;
      }
    }
    let penalty = 0;
    for (let t = 0; t < k * d; t++) {
      g[t] = g[t] / n + l2 * theta[t];
      penalty += theta[t] * theta[t];
    }
    for (let c = 0; c < k; c++) g[k * d + c] /= n;
    this.loss = loss / n + 0.5 * l2 * penalty;
    return g;
  }
}

// ---------------------------------------------------------------- L-BFGS vector steps (new arrays, inputs kept)
export const zeros = (size) => new Float64Array(size);
export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
/** y + alpha * x */
export function axpy(alpha, x, y) {
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = y[i] + alpha * x[i];
  return out;
}
export function scale(alpha, x) {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = alpha * x[i];
  return out;
}
export function maxAbs(x) {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
