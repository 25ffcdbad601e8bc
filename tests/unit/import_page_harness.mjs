// Runs the import page's reading modules in Node for tests/unit/test_contacts_import_page.py:
// a JSON request on stdin ({rules, files: {name: base64}, headers: [...]}, plus the
// modules' paths), the page's reading of each on stdout. The modules are loaded as data:
// URLs, so Node reads them as ES modules whatever their file name says.
import { readFileSync } from "node:fs";

const request = JSON.parse(readFileSync(0, "utf-8"));
const load = (path) => import("data:text/javascript;base64,"
  + Buffer.from(readFileSync(path)).toString("base64"));
const decoding = await load(request.decoding);
const csv = await load(request.csv);
const { classify, exportFormat } = csv.headerRules(request.rules.headers);

const files = {};
for (const [name, data] of Object.entries(request.files)) {
  try {
    const bytes = new Uint8Array(Buffer.from(data, "base64")); // as the page has it
    const { encoding, lines } = decoding.readLines(bytes, request.rules.text);
    const answer = { encoding, lines };
    if (name.endsWith(".csv")) {
      try {
        const read = csv.readCsv(lines.map(([text]) => text), request.rules);
        answer.format = read.format;
        answer.contacts = read.contacts;
        answer.columns = csv.columnsUsed(read.columns, request.rules.max_listed_columns);
      } catch (error) {
        answer.refused = error.message;
      }
    }
    files[name] = answer;
  } catch (error) {
    files[name] = { not_text: error.reason || String(error) };
  }
}
const headers = Object.fromEntries(request.headers.map((h) => [h, classify(h)]));
const formats = request.header_rows.map(exportFormat);
const commonHan = new Set(request.rules.text.common_han);
const guesses = request.guesses.map((data) => decoding.guessLegacy(
  new Uint8Array(Buffer.from(data, "base64")), commonHan));
process.stdout.write(JSON.stringify({ files, headers, formats, guesses }));
