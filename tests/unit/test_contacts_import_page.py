"""The import page reads a file as the bot does: its scripts (import_decoding.js and
import_csv.js, run in Node) against the Python importers, on the corpus of exports, on
every header of the vocabulary and on bytes in each legacy encoding. A rule changed on one
side only fails here.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bridges.contacts.api.pages import TEMPLATES, page_rules
from bridges.contacts.importers import ImportFailed, csv_headers
from bridges.contacts.importers.csv_formats import CsvParser
from bridges.contacts.summary import columns_used
from mercato.text_decoding import LineReader, NotText, guess_legacy
from tests.conftest import missing_service

HARNESS = Path(__file__).parent / "import_page_harness.mjs"
CORPUS = Path(__file__).parent / "fixtures" / "contacts"

EXTRA_FILES = {
    "zh-traditional-utf8.csv": "姓名,行動電話,電子郵件地址\n陳大文,0912 345 678,dw@example.tw\n"
                               .encode(),
    "ja-plain-sjis.csv": "氏名,電話番号,メールアドレス\n山田太郎,090-1234-5678,t@example.jp\n"
                         .encode("cp932"),
    "es-cp1252-semicolons.csv": "Nombre;Apellidos;Teléfono móvil;Correo electrónico\n"
                                "José;García;612 34 56 78;jose@example.es\n".encode("cp1252"),
    "ru-utf8-plain.csv": "name,phone\nИван,+7 912 345 67 89\n".encode(),
    "utf32-le.csv": "name,phone\nÅse,+47 912 34 567\n".encode("utf-32"),
    "utf16-be-bom.csv": b"\xfe\xff" + "name;email\nZoë;zoe@example.nl\n".encode("utf-16-be"),
    "quoted-newline.csv": b'name,phone\n"Kari\nNordmann",912 34 567\n"open,1\n',
    "google-separators.csv": b"Name,Phone 1 - Value\nOla,+47 1 ::: +47 2\n",
    "binary.csv": bytes(range(256)) * 4,
    "controls.csv": b"name,phone\n" + b"\x01\x02\x03\x04\x05\x06\x07\x08" * 20,
    "blank.csv": b" \r\n\t\n",
    "no-phone-column.csv": "姓名,地址\n张伟,北京\n".encode("gbk"),
    "latin-then-chinese.csv": "name,phone\nJosé,+34 612 345 678\n".encode("cp1252")
                              + "张伟,+86 138 0013 8000\n".encode("gbk"),
}

TRICKY_HEADERS = [
    "\ufeffName", "  E-mail  ", "Straße", "ＴＥＬ", "Ｅメール", "e_mail_address", "TEL.",
    "Téléphone (bureau)", "Télécopie (bureau)", "Courriel 2 - Valeur", "Nom de l'entreprise",
    "Телефон 1 — значение", "Электронная почта 1 — тип", "电话2", "电子邮件类型", "E-mail 2",
    "Phone 1 - Value", "Phone 1 - Type", "Business Fax", "TTY/TDD Phone", "Hotel", "phone2",
    "mobile-phone", "Mobilnummer", "ΤΗΛΕΦΩΝΟ", "Assistant's Name", "E-mail Display Name",
    "Mail", "Email Adresse", "携帯電話番号", "電子メール 2", "Telefon (privat) 2",
]
VARIANTS = ["{}", "{} 2", "{} 1 - Value", "{} 1 - Type", "Business {}", "{} Fax",
            "E-mail {}", "{} Label", "{}2", "{} Display Name", "{} (Home)"]


def _headers() -> list[str]:
    vocabulary: set[str] = set(csv_headers.browser_rules()["names"])
    for words in (csv_headers._PHONE, csv_headers._EMAIL, csv_headers._NOT_A_PHONE,
                  csv_headers._NOT_AN_ADDRESS, csv_headers._VALUE, csv_headers._GOOGLE_PART):
        vocabulary.update(words.words + words.parts)
    vocabulary |= csv_headers._OUTLOOK_ONLY
    headers = {variant.format(word) for word in vocabulary for variant in VARIANTS}
    headers |= {word.upper() for word in vocabulary} | {word.title() for word in vocabulary}
    return sorted(headers | set(TRICKY_HEADERS))


def _run_page(files: dict[str, bytes], headers: list[str], header_rows: list[list[str]],
              guesses: list[bytes]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        missing_service("Node.js (apt-get install nodejs), to run the import page's scripts")
        raise AssertionError("unreachable")
    request = {
        "rules": json.loads(json.dumps(page_rules())),
        "decoding": str(TEMPLATES / "import_decoding.js"),
        "csv": str(TEMPLATES / "import_csv.js"),
        "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
        "headers": headers, "header_rows": header_rows,
        "guesses": [base64.b64encode(data).decode() for data in guesses],
    }
    done = subprocess.run([node, str(HARNESS)], input=json.dumps(request), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _read_as_the_bot(data: bytes, csv: bool) -> dict[str, Any]:
    """What the bot's importers make of the file, in the harness's shape."""
    lines = LineReader()
    try:
        raw = lines.feed(data) + lines.close()
    except NotText as e:
        return {"not_text": e.reason}
    decoder = lines.decoder()
    decoded = [list(decoder.decode(line)) for line in raw]
    encoding = lines.file_encoding
    if raw and lines.encoding == encoding:
        encoding = decoder.encoding
    answer: dict[str, Any] = {"encoding": encoding, "lines": decoded}
    if csv:
        parser = CsvParser(lines.decoder())
        contacts = []
        try:
            for line in raw:
                contacts.append(parser.feed_line(line))
            contacts.append(parser.close())
        except ImportFailed as e:
            return {**answer, "refused": e.message}
        answer["contacts"] = [{"name": c.name, "phones": c.phones, "emails": c.emails}
                              for c in contacts if c is not None]
        answer["format"] = parser.layout.format if parser.layout else "CSV"
        answer["columns"] = columns_used(parser.layout.used()) if parser.layout else ""
    return answer


FILES = {**{p.name: p.read_bytes() for p in sorted(CORPUS.iterdir())
            if p.suffix in (".csv", ".vcf")}, **EXTRA_FILES}
HEADERS = _headers()
HEADER_ROWS = [[header] for header in HEADERS] + [["Name", "E-mail Address", "Phone 1 - Value"],
                                                  ["姓名", "手机"], ["Nom", "Courriel"]]
TEXTS = ["张伟", "王芳", "李娜 北京市", "陳大文", "山田太郎", "やまだ たろう", "ヤマダ", "José",
         "François Dupré", "Müller", "São Paulo", "Ærøskøbing", "Œuvre – “quoted”", "ção",
         "東京都 千代田区", "電話番号", "naïve café", "行動電話", "電子郵件", "林美玲", "張志明",
         "黃", "Åse"]


def _guesses() -> list[bytes]:
    """Each text in each encoding that can write it, and Chinese after Latin on one line."""
    samples = {b"Ola Nordmann", "José ".encode("cp1252") + "张伟".encode("gbk"),
               "Müller ".encode("cp1252") + "山田".encode("cp932")}
    for text in TEXTS:
        for encoding in ("gbk", "cp950", "cp932", "cp1252", "utf-8"):
            try:
                samples.add(text.encode(encoding))
            except UnicodeEncodeError:
                continue
    return sorted(samples)


GUESSES = _guesses()


@pytest.fixture(scope="module")
def page() -> dict[str, Any]:
    return _run_page(FILES, HEADERS, HEADER_ROWS, GUESSES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_page_reads_each_file_as_the_bot_does(page: dict[str, Any], name: str) -> None:
    bot = _read_as_the_bot(FILES[name], name.endswith(".csv"))
    browser = page["files"][name]
    if "not_text" in bot:
        assert browser == bot
        return
    assert browser["encoding"] == bot["encoding"]
    assert browser["lines"] == bot["lines"]
    if "refused" in bot:
        assert "names no phone or email column" in bot["refused"]
        assert "names no phone or email column" in browser["refused"]
        return
    for key in ("format", "columns", "contacts"):
        assert browser.get(key) == bot.get(key), key


def test_the_page_recognises_every_header_as_the_bot_does(page: dict[str, Any]) -> None:
    differ = {h: (page["headers"][h], csv_headers.classify(h).name) for h in HEADERS
              if page["headers"][h] != csv_headers.classify(h).name}
    assert not differ
    assert len(HEADERS) > 1000


def test_the_page_names_the_export_as_the_bot_does(page: dict[str, Any]) -> None:
    assert page["formats"] == [csv_headers.export_format(row) for row in HEADER_ROWS]
    assert {"CSV", "Outlook CSV", "Google Contacts CSV"} <= set(page["formats"])


def test_the_page_guesses_legacy_encodings_as_the_bot_does(page: dict[str, Any]) -> None:
    assert page["guesses"] == [guess_legacy(data) for data in GUESSES]
    assert {"gb18030", "cp950", "cp932", "cp1252", "utf-8"} <= set(page["guesses"])


def test_the_chinese_excel_export_reads_in_the_page(page: dict[str, Any]) -> None:
    """The issue's case, spelled out: GBK, 姓名,手机,邮箱."""
    read = page["files"]["zh-excel-gbk.csv"]
    assert read["encoding"] == "gb18030" and read["format"] == "CSV"
    assert read["columns"] == "Read names from 姓名, phone numbers from 手机, emails from 邮箱."
    assert read["contacts"][0] == {"name": "张伟", "phones": ["138 0013 8000"],
                                   "emails": ["zhangwei@example.cn"]}


@pytest.mark.parametrize(("name", "encoding", "contact"), [
    ("zh-tw-outlook-big5.csv", "cp950", {"name": "陳大文", "phones": ["0912 345 678"],
                                         "emails": ["dawen@example.tw"]}),
    ("zh-hk-excel-gbk-traditional.csv", "gb18030", {
        "name": "陳大文", "phones": ["+852 9123 4567"], "emails": ["dawen@example.hk"]})])
def test_traditional_chinese_exports_read_in_the_page(page: dict[str, Any], name: str,
                                                      encoding: str,
                                                      contact: dict[str, Any]) -> None:
    """Big5 from Taiwan and Hong Kong, and traditional characters in GBK."""
    read = page["files"][name]
    assert read["encoding"] == encoding
    assert read["columns"] == ("Read names from 姓名, phone numbers from 行動電話, emails from "
                               "電子郵件.")
    assert read["contacts"][0] == contact
    assert not any(repaired for _, repaired in read["lines"])
