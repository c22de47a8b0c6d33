/**
 * A decoded message's bytes field as a Buffer over the same memory (not a copy: nothing else holds the message), empty
 * when the field is absent.
 */
export function bytesOf(data: Uint8Array | undefined): Buffer {
  return data ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.alloc(0);
}
