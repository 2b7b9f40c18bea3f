// `deno task proto`: regenerates the typed protobuf code in src/kloset/gen/
// from proto/*.proto, with buf and protoc-gen-es from npm (pinned), so no
// protoc install is needed. The generated code is committed.

const BUF = "@bufbuild/buf@1.75.0";
const GEN_ES = "@bufbuild/protoc-gen-es@2.17.0";
const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

const tools = await Deno.makeTempDir({ prefix: "plakar-pg-protogen-" });
try {
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefix", tools, BUF, GEN_ES], tools);
  const template = JSON.stringify({
    version: "v2",
    plugins: [{
      local: `${tools}/node_modules/.bin/protoc-gen-es`,
      out: `${ROOT}/src/kloset/gen`,
      opt: ["target=ts", "import_extension=ts"],
    }],
  });
  await Deno.remove(`${ROOT}/src/kloset/gen`, { recursive: true }).catch(() => {});
  await run(`${tools}/node_modules/.bin/buf`, ["generate", "--template", template, "proto"], ROOT);
  console.log("generated src/kloset/gen/");
} finally {
  await Deno.remove(tools, { recursive: true }).catch(() => {});
}
