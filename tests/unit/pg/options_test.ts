// The option table (src/pg/options.ts) against what the parser really does,
// and the generated JSON Schemas against the parser: the same sample
// configurations accepted and refused by both.

import { Ajv2020 } from "ajv/dist/2020.js";
import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";
import {
  acceptedNames,
  CONFLICTS,
  formatList,
  type OptionDecl,
  optionDecl,
  OPTIONS,
  optionsFor,
  parseDuration,
  parseList,
  parseValue,
  REFUSALS,
  REQUIREMENTS,
  type Scope,
  SCOPES,
} from "../../../src/pg/options.ts";
import {
  parseExportConfig,
  parseImportConfig,
  parsePhysicalImportConfig,
  parseWalCaptureConfig,
} from "../../../src/pg/config.ts";
import { ConfigError } from "../../../src/errors.ts";
import { rangePattern, renderSchemas } from "../../../harness/schemas.ts";
import { CONNECTORS } from "../../../harness/package_manifest.ts";

type Config = Record<string, string>;

/** Runs the parser of a scope; the ConfigError it throws, or undefined. */
function parse(scope: Scope, config: Config): ConfigError | undefined {
  try {
    switch (scope) {
      case "importer:postgres":
        parseImportConfig(config, "postgres");
        break;
      case "exporter:postgres":
        parseExportConfig(config, "postgres");
        break;
      case "importer:postgres+aws":
        parseImportConfig(config, "postgres+aws");
        break;
      case "exporter:postgres+aws":
        parseExportConfig(config, "postgres+aws");
        break;
      case "importer:postgres+bin":
        parsePhysicalImportConfig(config);
        break;
      case "importer:postgres+wal":
        parseWalCaptureConfig(config);
        break;
    }
    return undefined;
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
}

/** A configuration each scope's parser accepts. */
const BASE: Record<Scope, Config> = {
  "importer:postgres": { location: "postgres://h/db" },
  "exporter:postgres": { location: "postgres://h/db" },
  "importer:postgres+aws": { location: "postgres+aws://u@h/db", region: "us-east-1" },
  "exporter:postgres+aws": { location: "postgres+aws://u@h/db", region: "us-east-1" },
  "importer:postgres+bin": { location: "postgres+bin://h" },
  "importer:postgres+wal": { location: "postgres+wal://h" },
};

/** Runs `fn` without AWS_REGION in the environment (it stands in for region=). */
function withoutAwsRegion(fn: () => void): void {
  const saved = Deno.env.get("AWS_REGION");
  Deno.env.delete("AWS_REGION");
  try {
    fn();
  } finally {
    if (saved !== undefined) Deno.env.set("AWS_REGION", saved);
  }
}

/** Every snake_case string literal of config.ts: a key the parser might accept by hand. */
async function namesInParserSource(): Promise<string[]> {
  const src = await Deno.readTextFile(new URL("../../../src/pg/config.ts", import.meta.url));
  return [...src.matchAll(/"([a-z][a-z0-9]*(?:_[a-z0-9]+)*)"/g)].map((m) => m[1]);
}

Deno.test("the table declares exactly the keys the parser accepts, in every protocol and connector type", async () => {
  const candidates = new Set([
    ...OPTIONS.map((o) => o.name),
    ...REFUSALS.map((r) => r.name),
    ...await namesInParserSource(),
    "colour",
  ]);
  withoutAwsRegion(() => {
    for (const scope of SCOPES) {
      const accepted: string[] = [];
      for (const name of candidates) {
        const config = { ...BASE[scope], [name]: BASE[scope][name] ?? "x" };
        const e = parse(scope, config);
        const refused = e !== undefined && e.option === name &&
          (e.message.startsWith(`${name}: unknown option`) ||
            REFUSALS.some((r) => r.name === name && e.message === `${name}: ${r.message}`));
        if (!refused) accepted.push(name);
      }
      assertEquals(accepted.sort(), acceptedNames(scope), scope);
    }
  });
});

Deno.test("an option is declared at most once per protocol and connector type, in one line", () => {
  for (const scope of SCOPES) {
    const names = optionsFor(scope).map((o) => o.name);
    assertEquals(names.length, new Set(names).size, `${scope}: ${names}`);
  }
  for (const o of OPTIONS) {
    assert(o.description.length > 0 && !o.description.includes("\n"), o.name);
    assert(o.scopes.length > 0, o.name);
    assert(/^[a-z][a-z0-9_]*$/.test(o.name), o.name);
    assert(!(o.default !== undefined && o.defaultText !== undefined), o.name);
  }
  for (const r of REFUSALS) {
    for (const s of r.scopes) assertEquals(optionDecl(s, r.name), undefined, `${r.name} ${s}`);
  }
});

Deno.test("every default parses under its own option's type", () => {
  for (const o of OPTIONS) {
    if (o.default !== undefined) assert(parseValue(o, o.default) !== undefined, o.name);
  }
});

Deno.test("every option a conflict or requirement names is taken where it applies", () => {
  for (const c of CONFLICTS) {
    for (const s of c.scopes) {
      for (const w of c.when) assert(optionDecl(s, w.name), `${w.name} in ${s}`);
      assert(optionDecl(s, c.option), `${c.option} in ${s}`);
    }
  }
  for (const r of REQUIREMENTS) {
    for (const s of r.scopes) for (const n of r.anyOf) assert(optionDecl(s, n), `${n} in ${s}`);
  }
});

Deno.test("rangePattern() matches exactly the integers of its range, leading zeros allowed", () => {
  for (const [min, max] of [[1, 128], [1, 1024], [2, 128], [1, 9], [7, 7], [10, 99], [1, 65535]]) {
    const re = new RegExp(`^${rangePattern(min, max)}$`);
    for (let n = 0; n <= Math.min(max * 2, 70000); n++) {
      assertEquals(re.test(String(n)), n >= min && n <= max, `${n} in ${min}..${max}`);
    }
    assert(re.test(`00${min}`));
    assert(!re.test(""));
  }
  const big = new RegExp(`^${rangePattern(1, 2147483647)}$`);
  for (const s of ["1", "2147483647", "2147483639", "1999999999", "999999999"]) {
    assert(big.test(s), s);
  }
  for (const s of ["0", "2147483648", "2147483650", "3000000000", "99999999999"]) {
    assert(!big.test(s), s);
  }
  assertThrows(() => rangePattern(0, 5), RangeError);
});

/** Values to try for an option, by type: good and bad alike. */
function samplesOf(decl: OptionDecl): string[] {
  const t = decl.type;
  switch (t.kind) {
    case "boolean":
      return ["true", "false", "1", "0", "T", "f", " yes ", "off", "On", "", " ", "maybe", "2"];
    case "integer":
      return [
        "",
        "0",
        String(t.min),
        String(t.max),
        String(t.max + 1),
        `00${t.min}`,
        " 5",
        "5 ",
        "+5",
        "-1",
        "1e3",
        "5.0",
        "0x10",
        "99999999999999999999",
      ];
    case "enum":
      return ["", ...t.values, "maybe", t.values[0].toUpperCase(), ` ${t.values[0]}`];
    case "string":
      return ["x", "a b", "", " "];
    case "list":
      return [
        "",
        "a,b",
        " a , b ,,",
        ",",
        '"a,b",c',
        ' "a,b" , c ',
        '"say ""hi"""',
        '""',
        '"",a',
        '"a',
        'a,"b,c',
        '"a"b',
        '"a" b,c',
        'a"b',
        'a,b"',
        '"a"""',
        '"a""',
        '"a\nb"',
      ];
    case "duration":
      return [
        "",
        "0",
        "0s",
        "5000",
        "500ms",
        "30s",
        "5min",
        "1h",
        "1d",
        "1m",
        "10 s",
        "1.5s",
        "-1",
        "2147483647",
        "2147483648",
        "007s",
      ];
    case "uri":
      return [];
    case "pem":
      return ["", "not pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"];
    case "dirs":
      return ["", "/a:/b", "/usr/lib/postgresql/N/bin, /opt/pg/bin", "pg/bin", ":", " /a : b"];
    case "pattern":
      return ["us-east-1", "eu-west-3", "us-gov-west-1", "US-EAST-1", "x", "us-east"];
  }
}

const LOCATIONS: Record<Scope, string[]> = {
  "importer:postgres": ["postgres://h", "postgresql://u:p@h:5433/db", "POSTGRES://h/db", "pg://h"],
  "exporter:postgres": ["postgres://h", "PostgreSQL://u@h/db", "mysql://h/db"],
  "importer:postgres+aws": ["postgres+aws://u@h", "POSTGRES+AWS://u@h:5433/db"],
  "exporter:postgres+aws": ["postgres+aws://u@h/db"],
  "importer:postgres+bin": ["postgres+bin://u:p@h:5433", "postgres+bin://h/", "postgres://h"],
  "importer:postgres+wal": ["postgres+wal://u:p@h:5433", "postgres+wal://h/", "postgres://h"],
};

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

/** Sample configurations for a scope: each option's values alone, then combinations. */
function samples(scope: Scope): Config[] {
  const base = BASE[scope];
  const out: Config[] = [base, { ...base, colour: "blue" }];
  for (const decl of optionsFor(scope)) {
    for (const v of samplesOf(decl)) out.push({ ...base, [decl.name]: v });
  }
  for (const location of LOCATIONS[scope]) out.push({ ...base, location });
  for (const r of REFUSALS) if (r.scopes.includes(scope)) out.push({ ...base, [r.name]: "x" });
  if (!scope.endsWith("+aws")) {
    out.push({ host: "h" }, { location: "", host: "h" }, { location: "" }, {});
    out.push({ location: "postgres://h", host: "" });
  }
  // Every pair of booleans, both true.
  const booleans = optionsFor(scope).filter((o) => o.type.kind === "boolean").map((o) => o.name);
  for (const a of booleans) {
    for (const b of booleans) if (a < b) out.push({ ...base, [a]: "true", [b]: "yes" });
  }
  // ssl_mode=disable beside each certificate option, and each path beside its inline PEM.
  for (const k of ["ssl_cert", "ssl_key", "ssl_root_cert"]) {
    out.push({ ...base, ssl_mode: "disable", [k]: "/c.pem" });
    out.push({ ...base, ssl_mode: "disable", [`${k}_data`]: PEM });
    out.push({ ...base, ssl_mode: "require", [k]: "/c.pem", [`${k}_data`]: PEM });
    out.push({ ...base, [k]: "", [`${k}_data`]: PEM });
  }
  if (scope.startsWith("exporter")) {
    for (const jobs of ["1", "2", "128", "", "002"]) {
      for (const atomic of [undefined, "", "true", "false", "0"]) {
        const a: Config = atomic === undefined ? {} : { atomic };
        out.push({ ...base, jobs, clean: "true", ...a });
        out.push({ ...base, jobs, recreate: "true", ...a });
        out.push({ ...base, jobs, single_transaction: "1", ...a });
        out.push({ ...base, jobs, recreate: "true", single_transaction: "true", ...a });
      }
    }
    out.push({ ...base, recreate: "true", database: "x" });
    out.push({ ...base, recreate: "true", database: "" });
    out.push({ ...base, recreate: "false", database: "x" });
    out.push({ ...base, recreate: "true", data_only: " on " });
    out.push({ ...base, role: "owner", single_transaction: "true" });
  }
  return out;
}

/**
 * What only the parser checks, out of any schema's reach: the inside of the
 * URI, and AWS_REGION in the environment. The schema accepts these.
 */
const PARSER_ONLY: [Scope, Config][] = [
  ["importer:postgres", { location: "postgres://h:99999/db" }],
  ["importer:postgres", { location: "postgres:///db" }],
  ["importer:postgres", { location: "postgres://h/db?application_name=x" }],
  ["importer:postgres", { location: "postgres://h/db#x" }],
  ["importer:postgres", { location: "postgres://h/db?sslmode=disable", ssl_cert: "/c.pem" }],
  ["exporter:postgres", { location: "postgres://h/db?sslmode=maybe" }],
  ["importer:postgres+aws", { location: "postgres+aws://u:p@h/db", region: "us-east-1" }],
  ["importer:postgres+aws", { location: "postgres+aws://h/db", region: "us-east-1" }],
  ["exporter:postgres+aws", { location: "postgres+aws://u@h/db" }],
  ["exporter:postgres+aws", { location: "postgres+aws://u@h/db", region: "" }],
  ["importer:postgres+bin", { location: "postgres+bin://h/db" }],
  ["importer:postgres+wal", { location: "postgres+wal://h/db" }],
];

function validators() {
  const ajv = new Ajv2020({ allErrors: true });
  const schemas = renderSchemas();
  const byScope = new Map<Scope, (c: Config) => boolean>();
  for (const c of CONNECTORS) {
    const validate = ajv.compile(JSON.parse(schemas.get(c.validator.replace(/^\.\//, ""))!));
    for (const p of c.protocols) {
      const scope = SCOPES.find((s) => s === `${c.type}:${p}`)!;
      byScope.set(scope, (x) => validate(x) as boolean);
    }
  }
  return byScope;
}

Deno.test("the JSON Schemas and the parser accept and refuse the same sample configurations", () => {
  const validate = validators();
  withoutAwsRegion(() => {
    const disagreements: string[] = [];
    let accepted = 0, refused = 0;
    for (const scope of SCOPES) {
      for (const config of samples(scope)) {
        const error = parse(scope, config);
        const bySchema = validate.get(scope)!(config);
        if (bySchema !== (error === undefined)) {
          disagreements.push(
            `${scope} ${JSON.stringify(config)}: schema ${
              bySchema ? "accepts" : "refuses"
            }, parser ${error ? `refuses (${error.message})` : "accepts"}`,
          );
        }
        if (error) refused++;
        else accepted++;
      }
    }
    assertEquals(disagreements, []);
    // The samples are not all of one kind.
    assert(accepted > 100 && refused > 100, `${accepted} accepted, ${refused} refused`);
  });
});

Deno.test("what only the parser can check: the URI's inside and AWS_REGION", () => {
  const validate = validators();
  withoutAwsRegion(() => {
    for (const [scope, config] of PARSER_ONLY) {
      assert(validate.get(scope)!(config), `schema refuses ${JSON.stringify(config)}`);
      assert(parse(scope, config), `parser accepts ${JSON.stringify(config)}`);
    }
  });
});

Deno.test("the parser takes its defaults from the table", () => {
  const decl = (scope: Scope, name: string) => optionDecl(scope, name) as { default?: string };
  const timeout = decl("importer:postgres", "connect_timeout");
  const jobs = decl("exporter:postgres", "jobs");
  const saved = [timeout.default, jobs.default];
  try {
    timeout.default = "11";
    jobs.default = "3";
    assertEquals(parseImportConfig(BASE["importer:postgres"], "postgres").conn.connectTimeout, 11);
    assertEquals(parseExportConfig(BASE["exporter:postgres"], "postgres").jobs, 3);
  } finally {
    [timeout.default, jobs.default] = saved;
  }
  const o = parseExportConfig(BASE["exporter:postgres"], "postgres");
  assertEquals([o.conn.connectTimeout, o.conn.port, o.conn.sslMode, o.jobs, o.atomic], [
    10,
    5432,
    "prefer",
    1,
    true,
  ]);
});

Deno.test("parseList() splits on commas, trimming blanks around unquoted names and dropping empty ones", () => {
  assertEquals(parseList("databases", " a, b ,,c,"), ["a", "b", "c"]);
  assertEquals(parseList("databases", "my db , x"), ["my db", "x"]);
  assertEquals(parseList("databases", ""), []);
  assertEquals(parseList("databases", " , ,"), []);
  assertEquals(parseList("databases", undefined), []);
});

Deno.test("parseList() takes a name holding commas, blanks and doubled quotes in double quotes", () => {
  assertEquals(parseList("databases", '"a,b",c'), ["a,b", "c"]);
  assertEquals(parseList("databases", 'c, "a,b" ,d'), ["c", "a,b", "d"]);
  // Inside the quotes nothing is trimmed; blanks outside them are.
  assertEquals(parseList("databases", '  " a , b "  '), [" a , b "]);
  assertEquals(parseList("databases", '"say ""hi"""'), ['say "hi"']);
  assertEquals(parseList("databases", '""""'), ['"']);
  // An empty quoted name is an empty name: no database has one.
  assertEquals(parseList("databases", '"",a,""'), ["a"]);
});

Deno.test("parseList() refuses an unterminated quote, a quote inside an unquoted name and text after a closing quote, naming the option", () => {
  for (
    const [value, what] of [
      ['"a,b', 'unterminated double quote in item 1 ("a,b)'],
      ['x,"a,b', 'unterminated double quote in item 2 ("a,b)'],
      ['"a""', 'unterminated double quote in item 1 ("a"")'],
      ['a"b', 'double quote in an unquoted name in item 1 (a"b)'],
      ['a,b"', 'double quote in an unquoted name in item 2 (b")'],
      ['"a"b,c', 'text after the closing double quote in item 1 ("a"b)'],
      ['"a" "b"', 'text after the closing double quote in item 1 ("a" "b")'],
    ]
  ) {
    const e = assertThrows(() => parseList("exclude_databases", value), ConfigError);
    assertEquals(e.option, "exclude_databases");
    assertEquals(
      e.message,
      `exclude_databases: ${what} (accepted: names separated by commas; a name with a comma or a double quote in double quotes, the quote doubled: "a,b",c or "say ""hi""")`,
    );
  }
  // A long value is cut, a newline escaped: the message stays one short line.
  const e = assertThrows(() => parseList("databases", `"${"x".repeat(60)}\n`), ConfigError);
  assert(e.message.includes(`("${"x".repeat(39)}...)`), e.message);
  assert(!e.message.includes("\n"), e.message);
});

Deno.test("formatList() quotes the names parseList would misread, and parseList reads them back", () => {
  const names = ["a", "a,b", 'say "hi"', " lead", "trail ", "my db", "名前", "%41/x=y"];
  assertEquals(formatList(names), 'a,"a,b","say ""hi"""," lead","trail ",my db,名前,%41/x=y');
  assertEquals(parseList("databases", formatList(names)), names);
});

Deno.test("every list option parses its value with the quoting rule", () => {
  const lists = OPTIONS.filter((o) => o.type.kind === "list");
  assert(lists.length >= 3, `${lists.length} list options`);
  for (const o of lists) {
    assertEquals(parseValue(o, '"a,b", c'), ["a,b", "c"], o.name);
    const e = assertThrows(() => parseValue(o, '"a,b'), ConfigError);
    assertEquals(e.option, o.name);
  }
});

Deno.test("a duration over the server's 2147483647 ms is refused at parse time, whatever its unit", () => {
  assertEquals(parseDuration("lock_wait_timeout", "24d"), "24d");
  const e = assertThrows(() => parseDuration("lock_wait_timeout", "30d"), ConfigError);
  assert(e.message.includes("at most 24 days"), e.message);
  assertThrows(() => parseDuration("lock_wait_timeout", "2147483648"), ConfigError);
});
