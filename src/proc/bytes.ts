// Byte arrays joined end to end, for the layers that assemble messages,
// scripts and header blocks from pieces.

/** The bytes of `parts` end to end, in a new array; a single part is returned as it is. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
