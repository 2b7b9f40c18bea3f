// The JSON Schemas the package manifest names as validators
// (./schemas/*.json), generated from the option table (src/pg/options.ts)
// and committed at the repository root, so that the root manifest.yaml is a
// valid package manifest as it stands; a test fails when they drift.
//
// plakar hands a connector its configuration as a map of strings, so every
// value is a string here: booleans are the spellings the parser takes,
// integers and durations are patterns that spell out their range. A
// validator serving two protocols chooses the protocol's rules by the
// scheme of `location`, as plakar routes by it. What the parser checks
// beyond this (the URI's parts, AWS_REGION from the environment) no schema
// can see. plakar v1.1 packages the validators; it does not apply them.
//
// `deno task schemas` rewrites them (`deno task docs` rewrites them too).

import {
  BOOLEAN_SPELLINGS,
  type Condition,
  CONFLICTS,
  describe,
  DURATION_MAX,
  DURATION_UNITS,
  type OptionDecl,
  optionDecl,
  optionsFor,
  REQUIREMENTS,
  schemeOf,
  type Scope,
  SCOPES,
  URI_SCHEMES,
} from "../src/pg/options.ts";
import { type ConnectorEntry, CONNECTORS } from "./package_manifest.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

type Schema = Record<string, unknown>;

/** Digit strings (no leading zero) of the same length from lo to hi, as regex alternatives. */
function sameLength(lo: string, hi: string): string[] {
  if (lo === hi) return [lo];
  if (lo.length === 1) return [`[${lo}-${hi}]`];
  if (lo[0] === hi[0]) return sameLength(lo.slice(1), hi.slice(1)).map((p) => lo[0] + p);
  const n = lo.length - 1;
  const out: string[] = [];
  let first = Number(lo[0]);
  let last = Number(hi[0]);
  if (lo.slice(1) !== "0".repeat(n)) {
    out.push(...sameLength(lo.slice(1), "9".repeat(n)).map((p) => lo[0] + p));
    first++;
  }
  const tail: string[] = [];
  if (hi.slice(1) !== "9".repeat(n)) {
    tail.push(...sameLength("0".repeat(n), hi.slice(1)).map((p) => hi[0] + p));
    last--;
  }
  if (first <= last) {
    out.push(`${first === last ? first : `[${first}-${last}]`}[0-9]${n > 1 ? `{${n}}` : ""}`);
  }
  return [...out, ...tail];
}

/**
 * A regular expression (no anchors) matching exactly the decimal numbers
 * from min to max (min >= 1), leading zeros allowed.
 */
export function rangePattern(min: number, max: number): string {
  if (!(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min >= 1 && min <= max)) {
    throw new RangeError(`Cannot build a range pattern: ${min} to ${max}`);
  }
  const parts: string[] = [];
  let lo = min;
  while (lo <= max) {
    const hi = Math.min(max, 10 ** String(lo).length - 1);
    parts.push(...sameLength(String(lo), String(hi)));
    lo = hi + 1;
  }
  return `0*(?:${parts.join("|")})`;
}

/** Spellings a boolean takes for `value`, blanks around allowed; `orBlank` adds the blank value. */
function booleanPattern(value: boolean, orBlank = false): string {
  return `^\\s*(?:${BOOLEAN_SPELLINGS[value ? "true" : "false"].join("|")})${
    orBlank ? "?" : ""
  }\\s*$`;
}

/** `postgres` as `[pP][oO]…`, so that a pattern takes the scheme in any case. */
function anyCase(s: string): string {
  return [...s].map((c) => /[a-z]/.test(c) ? `[${c}${c.toUpperCase()}]` : c.replace(/[+.]/, "\\$&"))
    .join("");
}

/** The schema of one option's value in a scheme. */
export function valueSchema(decl: OptionDecl, scope: Scope): Schema {
  const scheme = schemeOf(scope);
  const s: Schema = { type: "string", description: describe(decl, scope) };
  if (decl.default !== undefined) s.default = decl.default;
  const t = decl.type;
  switch (t.kind) {
    case "boolean":
      s.pattern = `^\\s*(?:${
        [...BOOLEAN_SPELLINGS.true, ...BOOLEAN_SPELLINGS.false].join("|")
      })?\\s*$`;
      break;
    case "integer":
      s.pattern = `^$|^${rangePattern(t.min, t.max)}$`;
      break;
    case "enum":
      s.enum = ["", ...t.values];
      break;
    case "string":
      if (t.nonBlank !== undefined) s.pattern = "\\S";
      break;
    case "list": {
      // parseList's grammar: an unquoted name holds no comma and no double
      // quote; a quoted one holds anything, "" standing for a double quote,
      // with blanks around it.
      const item = `(?:[^",]*|\\s*"(?:[^"]|"")*"\\s*)`;
      s.pattern = `^${item}(?:,${item})*$`;
      break;
    }
    case "duration":
      s.pattern = `^$|^${rangePattern(1, DURATION_MAX)}(?:${DURATION_UNITS.join("|")})?$`;
      break;
    case "uri":
      s.pattern = `^$|^(?:${URI_SCHEMES[scheme].map(anyCase).join("|")})://`;
      break;
    case "pem":
      s.pattern = "^$|-----BEGIN";
      break;
    case "dirs":
      s.pattern = "^(?:\\s*(?:/[^:,]*)?\\s*[:,])*\\s*(?:/[^:,]*)?\\s*$";
      break;
    case "pattern":
      s.pattern = `^$|${t.pattern}`;
      break;
  }
  return s;
}

/** The schema of "the condition holds", for a conflict. */
function conditionSchema(c: Condition, scope: Scope): Schema {
  const decl = optionDecl(scope, c.name);
  if (!decl) throw new RangeError(`Cannot build a schema: ${c.name} is not taken by ${scope}`);
  const present = (value: Schema): Schema => ({
    required: [c.name],
    properties: { [c.name]: { type: "string", ...value } },
  });
  const absentOrBlank = (blank: Schema): Schema => ({
    anyOf: [{ not: { required: [c.name] } }, present(blank)],
  });
  const isBoolean = decl.type.kind === "boolean";
  if ("is" in c || ("set" in c && isBoolean)) {
    const want = "is" in c ? c.is : true;
    const byDefault = decl.default !== undefined && (decl.default === "true") === want;
    return byDefault
      ? absentOrBlank({ pattern: booleanPattern(want, true) })
      : present({ pattern: booleanPattern(want) });
  }
  if ("set" in c) return present({ minLength: 1 });
  if ("atLeast" in c) {
    if (decl.type.kind !== "integer") throw new RangeError(`Cannot build a schema: ${c.name}`);
    const byDefault = decl.default !== undefined && Number(decl.default) >= c.atLeast;
    const match = present({ pattern: `^${rangePattern(c.atLeast, decl.type.max)}$` });
    return byDefault ? { anyOf: [absentOrBlank({ const: "" }), match] } : match;
  }
  const match = present({ const: c.equals });
  return decl.default === c.equals ? { anyOf: [absentOrBlank({ const: "" }), match] } : match;
}

/** The rules of one protocol and connector type: values, requirements, conflicts. */
export function scopeSchema(scope: Scope): Schema {
  const properties: Record<string, Schema> = {};
  for (const decl of optionsFor(scope)) properties[decl.name] = valueSchema(decl, scope);
  const rules: Schema[] = [];
  for (const r of REQUIREMENTS) {
    if (!r.scopes.includes(scope)) continue;
    rules.push({
      description: `${r.option}: ${r.message(schemeOf(scope))}`,
      anyOf: r.anyOf.map((name) => ({
        required: [name],
        properties: { [name]: { type: "string", minLength: 1 } },
      })),
    });
  }
  for (const c of CONFLICTS) {
    if (!c.scopes.includes(scope)) continue;
    rules.push({
      description: `${c.option}: ${c.message.replace(/\{([a-z_]+)\}/g, "N")}`,
      not: { allOf: c.when.map((w) => conditionSchema(w, scope)) },
    });
  }
  return { type: "object", properties, additionalProperties: false, allOf: rules };
}

/** A validator for plakar's manifest: one connector, one or more protocols. */
export function validatorSchema(c: ConnectorEntry): Schema {
  const scopes = c.protocols.map((p) => {
    const scope = SCOPES.find((s) => s === `${c.type}:${p}`);
    if (!scope) throw new RangeError(`Cannot build a schema: no ${c.type} for ${p}`);
    return scope;
  });
  // The first protocol is the default (a configuration without location).
  let rules = scopeSchema(scopes[0]);
  for (const scope of scopes.slice(1)) {
    const scheme = schemeOf(scope);
    rules = {
      if: {
        required: ["location"],
        properties: {
          location: {
            type: "string",
            pattern: `^(?:${URI_SCHEMES[scheme].map(anyCase).join("|")})://`,
          },
        },
      },
      then: scopeSchema(scope),
      else: rules,
    };
  }
  const names = [...new Set(scopes.flatMap((s) => optionsFor(s).map((d) => d.name)))].sort();
  const properties: Record<string, Schema> = {};
  for (const name of names) {
    const scope = scopes.find((s) => optionDecl(s, name))!;
    properties[name] = {
      type: "string",
      description: describe(optionDecl(scope, name)!, scope),
    };
  }
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: `plakar PostgreSQL ${c.protocols.includes("postgres+bin") ? "physical " : ""}${c.type}`,
    description: `Configuration of the ${c.type} for ${
      c.protocols.map((p) => `${p}://`).join(", ")
    } (every value a string, as plakar passes them)`,
    type: "object",
    properties,
    additionalProperties: false,
    allOf: [rules],
  };
}

/** Every validator the manifest names, by its path relative to the manifest, with its content. */
export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of CONNECTORS) {
    out.set(
      c.validator.replace(/^\.\//, ""),
      JSON.stringify(validatorSchema(c), null, 2) + "\n",
    );
  }
  return out;
}

/** Writes the schemas under `dir` (default: the repository root). */
export async function writeSchemas(dir = ROOT): Promise<string[]> {
  const written: string[] = [];
  for (const [path, text] of renderSchemas()) {
    const file = `${dir}/${path}`;
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(file, text);
    written.push(file);
  }
  return written;
}

/** The command line of `deno task schemas` (tasks/schemas.ts). */
export async function main(): Promise<void> {
  for (const f of await writeSchemas()) console.log(f);
}
