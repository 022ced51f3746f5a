// A minimal Buffer for vectra's browser build: vectra only calls Buffer.from(string | ArrayBuffer | view) and
// buffer.toString(). The npm `buffer` polyfill fails to save 10k x 768 (RangeError: Invalid array length,
// /work/shared/peers/browser-peers.md); TextEncoder/TextDecoder handle any size.
const enc = new TextEncoder();
const dec = new TextDecoder();

export class Buffer extends Uint8Array {
  static from(value, encodingOrOffset, length) {
    if (typeof value === "string") {
      const bytes = enc.encode(value);
      return new Buffer(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    if (value instanceof ArrayBuffer) {
      return new Buffer(value, encodingOrOffset || 0, length ?? value.byteLength - (encodingOrOffset || 0));
    }
    if (ArrayBuffer.isView(value)) return new Buffer(value.buffer, value.byteOffset, value.byteLength);
    return new Buffer(Uint8Array.from(value).buffer);
  }

  static isBuffer(value) {
    return value instanceof Buffer;
  }

  toString() {
    return dec.decode(this);
  }
}

export default { Buffer };
