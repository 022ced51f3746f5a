export { HNSW } from "mememo";
