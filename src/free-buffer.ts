// Gives a buffer's memory back at once rather than when a garbage collection finds it dead.
// onnxruntime-node answers every output in a new ArrayBuffer (768 KiB a frame at 512x512); dropped,
// those wait for the next young-generation collection, which V8 runs for them only once 32 MiB of
// them have piled up: that pile sat in every worker's malloc heap, and its collections came with
// full marking passes (measured: two a second per worker). `ArrayBuffer.prototype.transfer(0)`
// (ES2024) detaches the buffer and frees its memory now. Node 20's V8 has it behind
// --harmony-rab-gsab-transfer, which worker processes get (V8_TRANSFER_FLAGS); where it is absent
// this does nothing and the collector frees the buffer as before.
type Transferring = ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };

const canTransfer = typeof (ArrayBuffer.prototype as Transferring).transfer === 'function';

/** V8 flags a worker process needs for freeNow() to free (none where this Node has transfer). */
export const V8_TRANSFER_FLAGS: readonly string[] = canTransfer ? [] : ['--harmony-rab-gsab-transfer'];

/**
 * Frees the memory of `view`'s ArrayBuffer now, when the view spans all of it (never a slice of a
 * shared pool) and it is not shared. The caller guarantees nothing reads the buffer any more: every
 * view of it is detached (length 0) afterwards. Answers whether it was freed.
 */
export function freeNow(view: ArrayBufferView): boolean {
  const ab = view.buffer as Transferring;
  if (!(ab instanceof ArrayBuffer) || typeof ab.transfer !== 'function') return false;
  if (view.byteOffset !== 0 || view.byteLength !== ab.byteLength || ab.byteLength === 0) return false;
  ab.transfer(0);
  return true;
}
