// The in-browser import: read a vCard or CSV here, hash every phone number and email as
// the Matrix identity service v2 lookup does, and send only the hashes. Plain contacts
// stay in this page's memory. Results are written with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const BATCH = 1000;
  const NOT_PHONES = /fax|pager|telex|tty|type|label/i;

  // -- reading ---------------------------------------------------------------------------

  function decodeText(buffer) {
    const bytes = new Uint8Array(buffer);
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder("utf-16le").decode(bytes);
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes);
    return new TextDecoder("utf-8").decode(bytes); // drops a UTF-8 BOM
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

  function csvRows(text, delimiter) {
    const rows = [];
    let row = [], cell = "", quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
        else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === delimiter) { row.push(cell); cell = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(cell); rows.push(row); row = []; cell = "";
      } else cell += c;
    }
    if (cell || row.length) { row.push(cell); rows.push(row); }
    return rows;
  }

  function parseCsv(text) {
    const first = text.split(/\r?\n/, 1)[0];
    const delimiter = ["\t", ";", ","].reduce((a, b) => first.split(b).length > first.split(a).length ? b : a, ",");
    const [header, ...rows] = csvRows(text, delimiter);
    if (!header) return [];
    const cols = (test) => header.map((h, i) => test(h.trim()) ? i : -1).filter((i) => i >= 0);
    const phones = cols((h) => /phone|mobile|tel|handy|cell/i.test(h) && !NOT_PHONES.test(h));
    const emails = cols((h) => /e-?mail/i.test(h) && !/type|label|display/i.test(h));
    const names = cols((h) => /^(name|full name|display name)$/i.test(h));
    const parts = cols((h) => /^(first|given|middle|last|family) name$/i.test(h));
    const split = (v) => (v || "").split(/ ::: |;/).map((s) => s.trim()).filter(Boolean);
    return rows.map((r) => ({
      name: (names.length ? r[names[0]] : parts.map((i) => r[i]).filter(Boolean).join(" ")) || "",
      phones: phones.flatMap((i) => split(r[i])),
      emails: emails.flatMap((i) => split(r[i])),
    }));
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
    const file = $("file").files[0];
    const text = file ? decodeText(await file.arrayBuffer()) : $("pasted").value;
    if (!text.trim()) { say("Pick a file or paste your contacts first."); return; }
    const contacts = /BEGIN:VCARD/i.test(text) ? parseVCard(text) : parseCsv(text);
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
      say(`Read ${contacts.length} contacts (${hashes.length} numbers and addresses` +
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

  document.addEventListener("DOMContentLoaded", () => {
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (fragment.get("token")) {
      $("token").value = fragment.get("token");
      history.replaceState(null, "", location.pathname); // not in history or bookmarks
    }
    $("form").addEventListener("submit", find);
  });
})();
