// vectra 0.15.0's browser parts only (LocalIndex over IndexedDBStorage): its browser.js also pulls in embedding
// clients the benchmark does not use.
export { LocalIndex } from "../node_modules/vectra/lib/LocalIndex.js";
export { IndexedDBStorage } from "../node_modules/vectra/lib/storage/IndexedDBStorage.js";
