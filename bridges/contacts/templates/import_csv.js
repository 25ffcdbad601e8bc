// CSV contacts in the browser, read as the bot reads them (bridges/contacts/importers/
// csv_formats.py), with the header vocabulary of csv_headers.py. The server renders that
// vocabulary into the page as JSON (pages.py, `page_rules()`), so there is one table and
// two readers of it, and a unit test runs both on the same headers. Pure: no DOM.
const WORD = "[\\p{L}\\p{N}_]";
const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
// White space as Python's str.split() and str.strip() see it (not U+FEFF, unlike \s).
const SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WHITE = new RegExp(`[${SPACE}]+`, "u");
const EDGES = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, "gu");
const strip = (text) => text.replace(EDGES, "");
const GOOGLE_COLUMN = /^(.+?) ?\p{Nd}+ (\S+)$/u;
const GOOGLE_SEPARATOR = " ::: ";
const PERSONAL = ["FIRST", "MIDDLE", "LAST"];

export class CsvRefused extends Error {}

// Whole words (Python's \b, which knows every script), or parts anywhere.
function matcher({ words, parts }) {
  const anyOf = (list) => list.map(escapeRegExp).join("|");
  const alternatives = [];
  if (words.length) alternatives.push(`(?:^|(?!${WORD}).)(?:${anyOf(words)})(?!${WORD})`);
  if (parts.length) alternatives.push(anyOf(parts));
  const search = new RegExp(alternatives.join("|"), "u");
  const whole = new RegExp(`^(?:${anyOf([...words, ...parts])})$`, "u");
  return { search: (text) => search.test(text), fullmatch: (text) => whole.test(text) };
}

export function headerRules(rules) {
  const separators = new RegExp(`[${SPACE}${rules.separators.replace(/[\\\]\[^-]/g, "\\$&")}]+`, "gu");
  const normalise = (header) => strip(header).replace(/^\ufeff+|\ufeff+$/g, "")
    .normalize("NFKD").replace(/\p{Mn}/gu, "").toLowerCase().replace(/ß/g, "ss")
    .replace(/ς/g, "σ").replace(separators, " ").split(WHITE).filter(Boolean).join(" ");
  const names = new Map(Object.entries(rules.names));
  const [phone, email, notAPhone, notAnAddress, value, googlePart] = [
    rules.phone, rules.email, rules.not_a_phone, rules.not_an_address, rules.value,
    rules.google_part].map(matcher);
  const outlookOnly = new Set(rules.outlook_only);

  function classify(header) {
    const name = normalise(header);
    if (names.has(name)) return names.get(name);
    const words = name.replace(/\p{Nd}+/gu, " ").split(WHITE).filter(Boolean).join(" ");
    const isValue = value.search(words);
    if (email.search(words)) return isValue || !notAnAddress.search(words) ? "EMAIL" : "OTHER";
    if (phone.search(words)) return isValue || !notAPhone.search(words) ? "PHONE" : "OTHER";
    return "OTHER";
  }

  function exportFormat(headers) {
    const normalised = headers.map(normalise);
    const google = (name) => {
      const match = GOOGLE_COLUMN.exec(name);
      return Boolean(match && googlePart.fullmatch(match[2])
        && (phone.search(match[1]) || email.search(match[1])));
    };
    if (normalised.some(google)) return "Google Contacts CSV";
    if (normalised.some((name) => outlookOnly.has(name))) return "Outlook CSV";
    return "CSV";
  }

  return { normalise, classify, exportFormat };
}

// -- labels and the summary line (model.safe_label, summary.columns_used) --------------------

export function safeLabel(name, labels) {
  const shown = name.replace(/[\p{C}\p{Z}]/gu, (c) => (labels.kept_invisible.includes(c) ? c : " "));
  let chars = [...shown.split(WHITE).filter(Boolean).join(" ")];
  if (chars.length > labels.max_chars) chars = [...chars.slice(0, labels.max_chars - 1), "…"];
  const text = chars.join("");
  return labels.formula_starts.some((start) => text.startsWith(start)) ? "'" + text : text;
}

export function columnsUsed(columns, maxListed) {
  const listed = (headers) => {
    const shown = headers.slice(0, maxListed);
    if (headers.length > shown.length) {
      return `${shown.join(", ")} and ${headers.length - shown.length} more columns`;
    }
    return shown.length > 1 ? `${shown.slice(0, -1).join(", ")} and ${shown[shown.length - 1]}` : shown[0];
  };
  const parts = [["name", "names"], ["phone", "phone numbers"], ["email", "emails"]]
    .filter(([kind]) => columns[kind] && columns[kind].length)
    .map(([kind, what]) => `${what} from ${listed(columns[kind])}`);
  if (!parts.length) return "";
  const several = Object.values(columns).some((headers) => headers.length > 1);
  return `Read ${parts.join(several ? "; " : ", ")}.`;
}

// -- records and cells ---------------------------------------------------------------------

function delimiterOf(headerLine) {
  const outside = headerLine.replace(/"[^"]*"/g, "");
  const counts = [",", ";", "\t"].map((d) => [d, outside.split(d).length - 1]);
  const best = counts.reduce((a, b) => (b[1] > a[1] ? b : a));
  return best[1] ? best[0] : ",";
}

// One record as Python's csv module reads it (strict=False): a quote opens a quoted cell
// only at its start; null for a line break outside quotes with more after it.
function cellsOf(record, delimiter) {
  const cells = [];
  let cell = "", state = "start";
  for (let i = 0; i < record.length; i++) {
    const c = record[i];
    if (state === "quoted") {
      if (c === '"') state = "quote";
      else cell += c;
    } else if (state === "quote" && c === '"') {
      cell += c; state = "quoted";
    } else if (c === delimiter) {
      cells.push(cell); cell = ""; state = "start";
    } else if (c === "\n" || c === "\r") {
      if (record.slice(i + 1).replace(/^\r?\n?/, "")) return null;
      break;
    } else if (state === "start" && c === '"') state = "quoted";
    else { cell += c; state = "field"; }
  }
  cells.push(cell);
  return cells;
}

// Lines (text) in, { format, columns, contacts, skipped } out; CsvRefused when the first
// row names no phone or email column.
export function readCsv(lines, config) {
  const { classify, exportFormat } = headerRules(config.headers);
  const contacts = [];
  let layout = null, skipped = 0, record = [], chars = 0, quotes = 0;

  function header(text) {
    const delimiter = delimiterOf(text.split("\n", 1)[0]);
    const headers = cellsOf(text, delimiter) || [];
    const columns = headers.map(classify);
    if (!columns.includes("PHONE") && !columns.includes("EMAIL")) {
      throw new CsvRefused("This page does not recognise this CSV file: its first row names no "
        + "phone or email column. Export from Google Contacts or Outlook, or write a first row "
        + "'name,phone,email'.");
    }
    const familyFirst = headers.some((h, i) => PERSONAL.includes(columns[i])
      && new RegExp(config.labels.cjk, "u").test(h));
    return { headers, columns, delimiter, familyFirst, format: exportFormat(headers) };
  }

  function row(text) {
    const cells = cellsOf(text, layout.delimiter);
    if (cells === null) { skipped++; return; }
    if (!cells.some((cell) => strip(cell))) return;
    const names = {}, phones = [], emails = [];
    layout.columns.forEach((column, i) => {
      const value = strip(cells[i] || "");
      if (!value || column === "OTHER") return;
      if (column === "PHONE" || column === "EMAIL") {
        const target = column === "PHONE" ? phones : emails;
        for (const part of value.split(GOOGLE_SEPARATOR)) {
          for (const piece of layout.format === "CSV" ? part.split(";") : [part]) {
            if (strip(piece)) target.push(strip(piece));
          }
        }
      } else if (!(column in names)) names[column] = value;
    });
    let personal = PERSONAL.filter((c) => c in names).map((c) => names[c]).join(" ");
    if (layout.familyFirst) {
      const [given, family, middle] = [names.FIRST || "", names.LAST || "", names.MIDDLE || ""];
      personal = new RegExp(config.labels.cjk, "u").test(family + given)
        ? strip(`${family}${given}`) : [given, middle, family].filter(Boolean).join(" ");
    }
    const name = names.FULL_NAME || personal || names.NICKNAME || names.ORGANIZATION || "";
    contacts.push({ name, phones, emails });
  }

  function done(text) {
    if (!strip(text)) return;
    if (layout === null) layout = header(text);
    else row(text);
  }

  for (const line of lines) {
    record.push(line);
    chars += line.length;
    quotes += line.split('"').length - 1;
    if (quotes % 2) {
      if (chars > config.csv.max_record_chars || record.length > config.csv.max_record_lines) {
        skipped++; // an unclosed quote: drop what was gathered rather than hold the file
        record = []; chars = 0; quotes = 0;
      }
      continue;
    }
    const text = record.join("\n");
    record = []; chars = 0; quotes = 0;
    done(text);
  }
  if (record.length) done(record.join("\n") + '"');
  if (layout === null) return { format: "CSV", columns: {}, contacts, skipped };
  return { format: layout.format, columns: used(layout, config.labels), contacts, skipped };
}

// The headers names, phone numbers and emails were read from, as written (Layout.used).
function used(layout, labels) {
  const headers = (...kinds) => layout.headers.filter((h, i) => kinds.includes(layout.columns[i]))
    .map((h) => safeLabel(h.replace(/^\ufeff+|\ufeff+$/g, ""), labels));
  const names = [headers("FULL_NAME"), headers(...PERSONAL), headers("NICKNAME", "ORGANIZATION")]
    .find((found) => found.length) || [];
  const found = { name: names, phone: headers("PHONE"), email: headers("EMAIL") };
  return Object.fromEntries(Object.entries(found).filter(([, columns]) => columns.length));
}
