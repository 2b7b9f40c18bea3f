// HPACK (RFC 7541), the parts a gRPC server needs: a full decoder (static and
// dynamic tables, Huffman strings) for the client's request headers, and an
// encoder that writes literals without indexing, so the server never has to
// track the client's view of a table of its own.

const STATIC: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * Code length in bits of each byte value in the HPACK Huffman code (RFC 7541
 * Appendix B), one character per symbol: length = char code - 'A' + 5. The
 * code is canonical, so the lengths alone define it; EOS (256) is 30 ones.
 */
const CODE_LENGTHS =
  "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWV";
const EOS = 256;

/** A binary decoding tree as two parallel arrays: child[0|1] per node, leaf = -1 - symbol. */
function buildTree(): Int32Array {
  const lengths = [...CODE_LENGTHS].map((c) => c.charCodeAt(0) - 65 + 5);
  lengths.push(30);
  const order = lengths.map((len, sym) => [len, sym]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  // Each node: [child0, child1]; 0 means absent (node 0 is the root).
  const tree: number[] = [0, 0];
  let code = 0n;
  let prev = 0;
  for (const [len, sym] of order) {
    code <<= BigInt(len - prev);
    prev = len;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = Number((code >> BigInt(bit)) & 1n);
      if (bit === 0) {
        tree[node * 2 + b] = -1 - sym;
      } else {
        let next = tree[node * 2 + b];
        if (next === 0) {
          next = tree.length / 2;
          tree.push(0, 0);
          tree[node * 2 + b] = next;
        }
        node = next;
      }
    }
    code += 1n;
  }
  return Int32Array.from(tree);
}

/**
 * Built once at load (a few milliseconds), never written. Building it on
 * first use would save nothing: grpc-go's encoder Huffman-codes every string
 * that comes out shorter, so plakar's first request needs it.
 */
const TREE: Readonly<Int32Array> = buildTree();

export class HpackError extends Error {}

/** Decodes a Huffman-coded string (RFC 7541 §5.2). */
export function huffmanDecode(src: Uint8Array): Uint8Array {
  const tree = TREE;
  const out = new Uint8Array(Math.ceil((src.length * 8) / 5));
  let n = 0;
  let node = 0;
  let depth = 0; // bits since the last symbol
  let allOnes = true;
  for (const byte of src) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const next = tree[node * 2 + b];
      depth++;
      allOnes &&= b === 1;
      if (next < 0) {
        const sym = -1 - next;
        if (sym === EOS) throw new HpackError("EOS in a Huffman string");
        out[n++] = sym;
        node = 0;
        depth = 0;
        allOnes = true;
      } else if (next === 0) {
        throw new HpackError("invalid Huffman code");
      } else {
        node = next;
      }
    }
  }
  // Padding: at most 7 bits, all ones (a prefix of EOS).
  if (depth > 7 || !allOnes) throw new HpackError("invalid Huffman padding");
  return out.subarray(0, n);
}

const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** A decoding context for one connection's header blocks. */
export class HpackDecoder {
  // Newest first: name, value, entry size (octets + 32), name octets.
  #dynamic: [string, string, number, number][] = [];
  #size = 0;
  #max: number;
  /** Whether the last block decoded more than `maxListSize` (its list is then cut short). */
  tooLarge = false;

  /**
   * `limit`: our SETTINGS_HEADER_TABLE_SIZE. `maxListSize`: the most a decoded
   * list may hold (RFC 9113 §6.5.2 sizes); past it, fields are still decoded
   * to keep the table in step, but no longer kept, so memory stays bounded.
   */
  constructor(readonly limit = 4096, readonly maxListSize = Infinity) {
    this.#max = limit;
  }

  #evict(): void {
    while (this.#size > this.#max && this.#dynamic.length) {
      this.#size -= this.#dynamic.pop()![2];
    }
  }

  /** An entry; static ones are ASCII, so their octets are their lengths. */
  #entry(index: number): readonly [string, string, number?, number?] {
    if (index === 0) throw new HpackError("header index 0");
    if (index <= STATIC.length) return STATIC[index - 1];
    const e = this.#dynamic[index - STATIC.length - 1];
    if (!e) throw new HpackError(`header index ${index} out of range`);
    return e;
  }

  /** Decodes one complete header block into name/value pairs. */
  decode(block: Uint8Array): [string, string][] {
    const headers: [string, string][] = [];
    let listSize = 0;
    this.tooLarge = false;
    let pos = 0;
    let fieldSeen = false;
    let strBytes = 0; // octets of the last string read
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++] & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError("truncated integer");
        const b = block[pos++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) return value;
        if (shift > 28) throw new HpackError("integer too large");
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError("truncated string");
      const huffman = (block[pos] & 0x80) !== 0;
      const len = int(7);
      if (pos + len > block.length) throw new HpackError("truncated string");
      const raw = block.subarray(pos, pos + len);
      pos += len;
      const bytes = huffman ? huffmanDecode(raw) : raw;
      strBytes = bytes.length;
      return utf8.decode(bytes);
    };
    const nameSize = (idx: number): number => {
      if (!idx) return strBytes;
      const e = this.#entry(idx);
      return e[3] ?? e[0].length;
    };
    const emit = (name: string, value: string, size: number) => {
      listSize += size;
      if (listSize > this.maxListSize) this.tooLarge = true;
      else headers.push([name, value]);
    };
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) {
        const [name, value, size] = this.#sized(int(7));
        emit(name, value, size);
      } else if (b & 0x40) {
        const idx = int(6);
        const name = idx ? this.#entry(idx)[0] : str();
        const nameBytes = nameSize(idx);
        const value = str();
        const size = nameBytes + strBytes + 32;
        emit(name, value, size);
        this.#dynamic.unshift([name, value, size, nameBytes]);
        this.#size += size;
        this.#evict();
      } else if (b & 0x20) {
        // Allowed only at the start of a block (RFC 7541 §4.2).
        if (fieldSeen) throw new HpackError("table size update after a header field");
        const size = int(5);
        if (size > this.limit) throw new HpackError("table size update above the limit");
        this.#max = size;
        this.#evict();
        continue;
      } else {
        const idx = int(4); // without indexing (0000) or never indexed (0001)
        const name = idx ? this.#entry(idx)[0] : str();
        const nameBytes = nameSize(idx);
        const value = str();
        emit(name, value, nameBytes + strBytes + 32);
      }
      fieldSeen = true;
    }
    return headers;
  }

  /** An indexed field with its size (name and value octets + 32). */
  #sized(index: number): [string, string, number] {
    const e = this.#entry(index);
    return [e[0], e[1], e[2] ?? e[0].length + e[1].length + 32];
  }
}

function pushInt(out: number[], value: number, prefixBits: number, first: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

/** Encodes headers as literals without indexing (static-table names where they exist). */
export function encodeHeaders(headers: [string, string][]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const exact = STATIC.findIndex(([n, v]) => n === name && v === value);
    if (exact >= 0) {
      pushInt(out, exact + 1, 7, 0x80);
      continue;
    }
    const named = STATIC.findIndex(([n]) => n === name);
    if (named >= 0) {
      pushInt(out, named + 1, 4, 0x00);
    } else {
      out.push(0x00);
      const n = utf8enc.encode(name);
      pushInt(out, n.length, 7, 0x00);
      out.push(...n);
    }
    const v = utf8enc.encode(value);
    pushInt(out, v.length, 7, 0x00);
    for (const c of v) out.push(c);
  }
  return Uint8Array.from(out);
}
