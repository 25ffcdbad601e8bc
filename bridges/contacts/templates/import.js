// The in-browser import: read a vCard or CSV here, hash every phone number and email as
// the Matrix identity service v2 lookup does, and send only the hashes. Plain contacts
// stay in this page's memory. Results are written with textContent, never as HTML.
// Files are decoded (import_decoding.js) and CSV headers recognised (import_csv.js) as the
// bot does, with the rules the server renders into the page (#import-rules).
import { NotText, readLines } from "/import_decoding.js";
import { CsvRefused, columnsUsed, readCsv } from "/import_csv.js";

{
  const $ = (id) => document.getElementById(id);
  const BATCH = 1000;
  const RULES = JSON.parse($("import-rules").textContent);

  // -- reading ---------------------------------------------------------------------------

  // The file as lines of text, its kind ("CSV, GBK/GB18030") and the columns read.
  function readContacts(lines, encoding) {
    const encodingName = encoding ? RULES.encodings[encoding] || encoding : "";
    const first = lines.find((line) => line.trim());
    if (first === undefined) return null;
    if (/^[\ufeff \t]*BEGIN:VCARD/i.test(first)) {
      return { contacts: parseVCard(lines.join("\n")), kind: ["vCard", encodingName], columns: "" };
    }
    const csv = readCsv(lines, RULES);
    return { contacts: csv.contacts, kind: [csv.format, encodingName],
             columns: columnsUsed(csv.columns, RULES.max_listed_columns) };
  }

  async function readInput() {
    const file = $("file").files[0];
    if (!file) return readContacts($("pasted").value.split(/\r\n|\n|\r/), "");
    const { encoding, lines } = readLines(new Uint8Array(await file.arrayBuffer()), RULES.text);
    return readContacts(lines.map(([text]) => text), encoding);
  }

  function decodeQuotedPrintable(value) {
    const bytes = [];
    for (let i = 0; i < value.length; i++) {
      const hex = value.slice(i + 1, i + 3);
      if (value[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...new TextEncoder().encode(value[i]));
      }
    }
    return new TextDecoder("utf-8").decode(new Uint8Array(bytes));
  }

  function parseVCard(text) {
    const raw = text.replace(/\r\n?/g, "\n").replace(/\n[ \t]/g, "").split("\n");
    const contacts = [];
    let card = null;
    for (let i = 0; i < raw.length; i++) {
      let line = raw[i];
      if (/QUOTED-PRINTABLE/i.test(line.split(":")[0])) {
        while (line.endsWith("=") && i + 1 < raw.length) line = line.slice(0, -1) + raw[++i];
      }
      const m = /^(?:[A-Za-z0-9-]+\.)?([A-Za-z-]+)((?:;[^:]*)?):(.*)$/.exec(line);
      if (!m) continue;
      const name = m[1].toUpperCase();
      const params = m[2].toUpperCase();
      let value = m[3];
      if (name === "BEGIN") { card = { name: "", phones: [], emails: [] }; continue; }
      if (name === "END") { if (card) contacts.push(card); card = null; continue; }
      if (!card) continue;
      if (params.includes("QUOTED-PRINTABLE")) value = decodeQuotedPrintable(value);
      if (name === "FN") card.name = value.replace(/\\(.)/g, "$1");
      else if (name === "N" && !card.name) card.name = value.split(";").slice(0, 2).reverse().join(" ").trim();
      else if (name === "TEL") card.phones.push(value.replace(/^tel:/i, "").split(";")[0]);
      else if (name === "EMAIL") card.emails.push(value);
    }
    return contacts;
  }

  // -- normalising and hashing -------------------------------------------------------------

  // Minimal on purpose (the bot and the CLI use the full phonenumbers rules): strip
  // spaces and punctuation, 00 → +, and put the calling code in front of a number
  // written without one (dropping one leading trunk 0). The spec's address is the
  // number's digits without the +.
  function phoneAddress(raw, callingCode) {
    let s = raw.replace(/[\s\-().\/\u00a0]/g, "");
    if (s.startsWith("00")) s = "+" + s.slice(2);
    if (!s.startsWith("+")) {
      if (!callingCode) return null;
      s = "+" + callingCode + s.replace(/^0/, "");
    }
    return /^\+[1-9]\d{5,14}$/.test(s) ? s.slice(1) : null;
  }

  function emailAddress(raw) {
    const s = raw.replace(/^mailto:/i, "").trim().toLowerCase();
    return /^[^\s@]+@[^\s@]+$/.test(s) ? s : null;
  }

  async function lookupHash(address, medium, pepper) {
    const data = new TextEncoder().encode(`${address} ${medium} ${pepper}`);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    let binary = "";
    for (const b of digest) binary += String.fromCharCode(b);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // -- talking to the identity service (this origin only) --------------------------------

  async function call(path, token, body) {
    const resp = await fetch(`/_matrix/identity/v2${path}`, {
      method: body ? "POST" : "GET",
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
    });
    const answer = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const error = new Error(answer.error || `the server answered ${resp.status}`);
      error.status = resp.status;
      throw error;
    }
    return answer;
  }

  function say(text) { $("status").textContent = text; }

  function show(matches) {
    const list = $("matches");
    list.replaceChildren();
    for (const { userId, name } of matches) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `https://matrix.to/#/${encodeURIComponent(userId).replace(/%40/g, "@").replace(/%3A/gi, ":")}`;
      link.textContent = userId;
      link.rel = "noreferrer";
      item.append(link);
      if (name) item.append(` — your contact “${name}”`);
      list.append(item);
    }
    $("results").hidden = matches.length === 0;
  }

  async function find(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) { say("Paste your access code first: type “import” in your chat with the bot to get a link."); return; }
    if (!window.crypto || !crypto.subtle) { say("This browser cannot hash here (the page must be opened over https)."); return; }
    show([]);
    $("columns").textContent = "";
    let read;
    try {
      read = await readInput();
    } catch (error) {
      if (error instanceof NotText) say(`This is not a text file (${error.reason}). Pick a contacts export: a .vcf file or a .csv file.`);
      else if (error instanceof CsvRefused) say(error.message);
      else throw error;
      return;
    }
    if (!read) { say("Pick a file or paste your contacts first."); return; }
    const { contacts, kind, columns } = read;
    $("columns").textContent = columns; // which columns were read, as the bot says it
    const callingCode = $("country").value.replace(/\D/g, "");
    $("find").disabled = true;
    try {
      say("Hashing…");
      const [{ lookup_pepper: pepper }, { user_id: me }] =
        await Promise.all([call("/hash_details", token), call("/account", token)]);
      const names = new Map();
      let unreadable = 0;
      for (const contact of contacts) {
        const ids = [
          ...contact.phones.map((p) => [phoneAddress(p, callingCode), "msisdn"]),
          ...contact.emails.map((e) => [emailAddress(e), "email"]),
        ];
        for (const [address, medium] of ids) {
          if (!address) { unreadable++; continue; }
          const hash = await lookupHash(address, medium, pepper);
          if (!names.has(hash)) names.set(hash, contact.name);
        }
      }
      const hashes = [...names.keys()];
      const found = new Map();
      for (let start = 0; start < hashes.length; start += BATCH) {
        say(`Looking up ${Math.min(start + BATCH, hashes.length)} of ${hashes.length}…`);
        const { mappings } = await call("/lookup", token, {
          addresses: hashes.slice(start, start + BATCH), algorithm: "sha256", pepper });
        for (const [hash, userId] of Object.entries(mappings || {})) {
          if (userId !== me && !found.has(userId)) found.set(userId, names.get(hash) || "");
        }
      }
      const matches = [...found].map(([userId, name]) => ({ userId, name }))
        .sort((a, b) => a.name.localeCompare(b.name) || a.userId.localeCompare(b.userId));
      show(matches);
      const what = kind.filter(Boolean).join(", ");
      say(`Read ${contacts.length} contacts (${what ? what + "; " : ""}${hashes.length} numbers and addresses` +
          (unreadable ? `, ${unreadable} not readable` : "") + `): ` +
          (matches.length ? `${matches.length} of them on Mercato.` : "none of them is on Mercato yet."));
    } catch (error) {
      show([]);
      say(error.status === 401
        ? "This access code is unknown or has expired: type “import” in your chat with the bot for a new link."
        : `Nothing was found: ${error.message}`);
    } finally {
      $("find").disabled = false;
    }
  }

  function start() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (fragment.get("token")) {
      $("token").value = fragment.get("token");
      history.replaceState(null, "", location.pathname); // not in history or bookmarks
    }
    $("form").addEventListener("submit", find);
  }

  // A module runs once the document is parsed: before DOMContentLoaded, or after it.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
