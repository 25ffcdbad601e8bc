"""The contact importers on a corpus of real-world-shaped exports, and on hostile files.

The corpus lives in tests/unit/fixtures/contacts/ (written by make_corpus.py there).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridges.contacts.importers import Contact, ContactReader, DigestSet, ImportFailed, read_all
from bridges.contacts.importers.csv_headers import Column, classify
from bridges.contacts.summary import columns_used
from mercato import text_decoding as text_module

CORPUS = Path(__file__).parent / "fixtures" / "contacts"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def by_label(contacts: list[Contact]) -> dict[str, Contact]:
    return {c.label: c for c in contacts}


def all_phones(contacts: list[Contact]) -> set[str]:
    return {p for c in contacts for p in c.phones}


# -- vCard ---------------------------------------------------------------------------------

def test_iphone_vcard_3() -> None:
    contacts, report = read_all(corpus("iphone-3.0.vcf"), region="NO")
    assert (report.format, report.encoding) == ("vCard", "UTF-8")
    assert report.contacts == 8
    found = by_label(contacts)
    # Grouped item1.TEL and a type=pref email, lower-cased; the photo is skipped.
    assert found["Ola Nordmann"].phones == ("+4741234567",)
    assert found["Ola Nordmann"].emails == ("ola.nordmann@example.no",)
    assert found["山田 太郎"].phones == ("+819012345678",)
    assert found["山田 太郎"].emails == ("taro.yamada@example.jp",)
    assert found["Анна Иванова"].emails == ("anna@example.ru",)
    # A folded FN line (long names wrap at 75 octets) is joined, then shortened for display.
    assert any(label.startswith("Maximilian Alexander von und zu Hohenberg") for label in found)
    # "0047 412 34 567" is Ola's number again: merged, not a second contact.
    assert report.duplicates_merged == 1
    # A national number ("22 12 34 56") is read with the region.
    assert found["Pizza place"].phones == ("+4722123456",)
    assert report.without_identifiers == 1  # "Empty Nobody" has neither
    assert report.problems_total == 0


def test_iphone_vcard_without_region_reports_national_numbers() -> None:
    contacts, report = read_all(corpus("iphone-3.0.vcf"))
    problems = [p.describe() for p in report.problems]
    assert any("Pizza place" in p and "no country code" in p for p in problems)
    # The report names the contact, never the number that failed.
    assert not any("22 12 34 56" in p or "22123456" in p for p in problems)
    assert "+4722123456" not in all_phones(contacts)


def test_android_vcard_2_1_quoted_printable() -> None:
    contacts, report = read_all(corpus("android-2.1.vcf"), region="CN")
    found = by_label(contacts)
    # QUOTED-PRINTABLE with CHARSET=UTF-8 and with CHARSET=ISO-8859-1.
    assert found["张伟"].phones == ("+8613800138000", "+861012345678")
    assert found["张伟"].emails == ("zhangwei@example.cn",)
    assert found["Kari Østby"].phones == ("+4791234567",)
    assert found["José García"].phones == ("+34612345678",)
    # A Thai name across a soft line break ("=" at the end of a line).
    assert found["ใจดี สมชาย"].phones == ("+66812345678",)
    # The AGENT card nested in "Boss" is someone else: its number is not the boss's.
    assert found["Boss"].phones == ("+4722123456",)
    assert "+4722998877" not in all_phones(contacts)
    problems = [p.describe() for p in report.problems]
    assert any("Wrong number" in p and "phone number" in p for p in problems)
    assert any("Wrong number" in p and "email address" in p for p in problems)
    assert report.contacts == 6 and report.without_identifiers == 1


def test_vcard_4_tel_uris() -> None:
    contacts, report = read_all(corpus("rfc6350-4.0.vcf"))
    found = by_label(contacts)
    # TEL;VALUE=uri:tel:+1-418-656-9254;ext=102, and a quoted TYPE="work,voice" parameter.
    assert found["Simon Perreault"].phones == ("+14186569254", "+14182626501")
    assert found["Simon Perreault"].emails == ("simon.perreault@viagenie.ca",)
    # mailto: and upper case are normalised.
    assert found["Ola Nordmann (from the laptop)"].emails == ("ola.nordmann@example.no",)
    assert report.problems_total == 0


@pytest.mark.parametrize("name, encoding", [("utf16-le-bom.vcf", "UTF-16"),
                                            ("utf16-be-nobom.vcf",
                                             "UTF-16 (big-endian, no BOM)")])
def test_utf16_vcards(name: str, encoding: str) -> None:
    contacts, report = read_all(corpus(name))
    assert report.encoding == encoding
    assert contacts and contacts[0].phones
    assert any(c.label in ("山田 太郎", "Анна Иванова") for c in contacts)


def test_vcard_folded_line_and_escapes() -> None:
    data = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Kari\\, the \r\n baker\r\nTEL:+47 9\r\n"
            b"\t1234567\r\nEND:VCARD\r\n")
    contacts, _ = read_all(data)
    assert contacts[0].label == "Kari, the baker"
    assert contacts[0].phones == ("+4791234567",)


def test_vcard_line_ends_of_every_kind() -> None:
    for end in (b"\r\n", b"\n", b"\r"):
        data = end.join([b"BEGIN:VCARD", b"FN:Per", b"TEL:+4791234567", b"END:VCARD", b""])
        contacts, _ = read_all(data)
        assert [c.phones for c in contacts] == [("+4791234567",)], end


# -- CSV -----------------------------------------------------------------------------------

def test_google_csv() -> None:
    contacts, report = read_all(corpus("google.csv"), region="US")
    assert report.format == "Google Contacts CSV"
    found = by_label(contacts)
    assert found["Ola Nordmann"].emails == ("ola.nordmann@example.no", "ola@fjordkraft.example")
    # Two numbers in one cell, joined by " ::: " as Google does.
    assert found["Kari Østby"].phones == ("+4791234567", "+4722123456")
    # A row without a name is called by its organisation.
    assert found["Acme Widgets"].phones == ("+12025550143",)
    assert found["Acme Widgets"].emails == ("sales@acme.example",)
    # The quoted multi-line address did not break the rows.
    assert report.contacts == 4


def test_google_legacy_csv_with_bom() -> None:
    contacts, report = read_all(corpus("google-legacy.csv"))
    assert (report.format, report.encoding) == ("Google Contacts CSV", "UTF-8 with BOM")
    assert contacts[0].label == "Anna Ivanova"
    assert contacts[0].emails == ("anna@example.ru", "anna.ivanova@work.example")


def test_outlook_csv_windows_1252() -> None:
    contacts, report = read_all(corpus("outlook.csv"), region="FR")
    assert (report.format, report.encoding) == ("Outlook CSV", "Windows-1252")
    found = by_label(contacts)
    # Fax numbers are not phones anyone answers.
    assert found["Jürgen Müller"].phones == ("+49301234567", "+4915123456789")
    assert found["François Dupré"].phones == ("+33612345678",)
    assert "Søren Kierkegaard" not in found
    assert report.without_identifiers == 1


def test_outlook_unicode_text_is_utf16_and_tabs() -> None:
    contacts, report = read_all(corpus("outlook-unicode.csv"))
    assert report.encoding == "UTF-16"
    assert by_label(contacts)["Γιώργος Παπαδόπουλος"].phones == ("+306912345678",)
    assert by_label(contacts)["李 娜"].emails == ("li.na@example.cn",)


def test_plain_csv_merges_duplicates() -> None:
    contacts, report = read_all(corpus("plain.csv"), region="NO")
    assert report.format == "CSV"
    assert [c.label for c in contacts] == ["Ola Nordmann", "Kari Østby", "Per Hansen"]
    assert contacts[1].phones == ("+4791234567", "+4722123456")  # "a;b" in one cell
    assert report.duplicates_merged == 1  # "Ola again": same number and address
    assert report.identifiers == 5


def test_gbk_csv() -> None:
    contacts, report = read_all(corpus("gbk.csv"), region="CN")
    assert report.encoding == "GBK/GB18030"
    assert [c.label for c in contacts] == ["张伟", "王芳", "李娜"]
    assert by_label(contacts)["王芳"].phones == ("+8613512345678",)


LANGUAGE_EXPORTS = [
    ("zh-excel-gbk.csv", "CN", "CSV", "GBK/GB18030",
     [("张伟", ("+8613800138000",), ("zhangwei@example.cn",)),
      ("王芳", ("+8613512345678",), ("wangfang@example.cn",))],
     "Read names from 姓名, phone numbers from 手机, emails from 邮箱."),
    ("zh-tw-outlook-big5.csv", "TW", "Outlook CSV", "Big5",
     [("陳大文", ("+886912345678",), ("dawen@example.tw",)),
      ("林美玲", ("+886223456789",), ("meiling@example.com.tw",)),
      ("張志明", ("+886933123456",), ())],
     "Read names from 姓名, phone numbers from 行動電話, emails from 電子郵件."),
    ("zh-hk-excel-gbk-traditional.csv", "HK", "Outlook CSV", "GBK/GB18030",
     [("陳大文", ("+85291234567",), ("dawen@example.hk",)),
      ("黃美玲", ("+85261234567",), ())],
     "Read names from 姓名, phone numbers from 行動電話, emails from 電子郵件."),
    ("ja-outlook-sjis.csv", "JP", "Outlook CSV", "Shift_JIS",
     [("山田太郎", ("+819012345678",), ("taro.yamada@example.jp",)),
      ("佐藤花子", ("+818098765432",), ("hanako@example.jp",))],
     "Read names from 姓 and 名; phone numbers from 携帯電話; emails from 電子メール アドレス."),
    ("es-google-utf8bom.csv", "ES", "Google Contacts CSV", "UTF-8 with BOM",
     [("José García López", ("+34612345678",), ("jose@example.es",))],
     "Read names from Nombre and Apellidos; phone numbers from Teléfono 1 - Valor; emails "
     "from Correo electrónico 1 - Valor."),
    ("pt-outlook-utf16.csv", "BR", "Outlook CSV", "UTF-16",
     [("João Conceição", ("+5511912345678",), ("joao@example.com.br",))],
     "Read names from Nome and Sobrenome; phone numbers from Telefone celular; emails from "
     "Endereço de email."),
    ("de-outlook-cp1252.csv", "DE", "Outlook CSV", "Windows-1252",
     [("Jürgen Müller", ("+4915123456789", "+49301234567"), ("juergen@example.de",))],
     "Read names from Vorname and Nachname; phone numbers from Mobiltelefon and Telefon "
     "geschäftlich; emails from E-Mail-Adresse."),
    ("fr-outlook-cp1252.csv", "FR", "Outlook CSV", "Windows-1252",
     [("François Dupré", ("+33612345678",), ("f.dupre@example.fr",))],
     "Read names from Prénom and Nom; phone numbers from Téléphone mobile; emails from "
     "Adresse de messagerie."),
    ("ru-google-utf8bom.csv", "RU", "Google Contacts CSV", "UTF-8 with BOM",
     [("Анна Иванова", ("+79123456789",), ("anna@example.ru",))],
     "Read names from Имя and Фамилия; phone numbers from Телефон 1 — значение; emails "
     "from Электронная почта 1 — значение."),
]


@pytest.mark.parametrize("name, region, kind, encoding, expected, columns", LANGUAGE_EXPORTS)
def test_exports_in_other_languages(name: str, region: str, kind: str, encoding: str,
                                    expected: list[tuple[str, tuple[str, ...],
                                                         tuple[str, ...]]],
                                    columns: str) -> None:
    """Each as its program writes it: GBK from Chinese Excel (simplified or traditional
    characters), Big5 from Outlook in Taiwan, Shift_JIS from Japanese
    Outlook, UTF-8 with a BOM from Google, UTF-16 from Outlook's Unicode text, Windows-1252
    from German and French Outlook. Fax columns are not phones."""
    contacts, report = read_all(corpus(name), region=region)
    assert (report.format, report.encoding) == (kind, encoding)
    assert [(c.label, c.phones, c.emails) for c in contacts] == expected
    assert report.problems_total == 0
    assert columns_used(report.columns) == columns


def test_a_chinese_header_with_english_rows_is_no_longer_refused() -> None:
    english = read_all("name,phone,email\n张伟,+86 138 0013 8000,zw@example.cn\n"
                       .encode("gbk"))[0]
    chinese = read_all("姓名,手机,邮箱\n张伟,+86 138 0013 8000,zw@example.cn\n"
                       .encode("gbk"))[0]
    assert chinese == english


@pytest.mark.parametrize("header, column", [
    ("姓名", Column.FULL_NAME), ("名字", Column.FULL_NAME), ("手机号码", Column.PHONE),
    ("移动电话", Column.PHONE), ("电话2", Column.PHONE), ("電話", Column.PHONE),
    ("手機", Column.PHONE), ("电子邮箱", Column.EMAIL), ("電子郵件", Column.EMAIL),
    ("商务传真", Column.OTHER), ("电子邮件类型", Column.OTHER),
    ("氏名", Column.FULL_NAME), ("姓", Column.LAST), ("名", Column.FIRST),
    ("電話番号", Column.PHONE), ("メールアドレス", Column.EMAIL), ("Eメール", Column.EMAIL),
    ("姓 (フリガナ)", Column.OTHER), ("電子メール表示名", Column.OTHER),
    ("NOMBRE", Column.FIRST), ("Apellido", Column.LAST), ("Celular", Column.PHONE),
    ("Correo electrónico 2", Column.EMAIL), ("Tipo de correo electrónico", Column.OTHER),
    ("Sobrenome", Column.LAST), ("Telemóvel", Column.PHONE), ("E-mail 2", Column.EMAIL),
    ("Handy", Column.PHONE), ("Autotelefon", Column.PHONE), ("Texttelefon", Column.OTHER),
    ("E-Mail-Typ", Column.OTHER), ("E-Mail: Angezeigter Name", Column.OTHER),
    ("prenom", Column.FIRST), ("Portable", Column.PHONE), ("Courriel", Column.EMAIL),
    ("Adresse e-mail", Column.EMAIL), ("Radiomessagerie", Column.OTHER),
    ("Мобильный телефон", Column.PHONE), ("Рабочий факс", Column.OTHER),
    ("Адрес эл. почты", Column.EMAIL), ("Тип эл. почты", Column.OTHER),
    ("Телефон 1 — тип", Column.OTHER), ("Почтовый индекс", Column.OTHER),
])
def test_headers_in_other_languages(header: str, column: Column) -> None:
    assert classify(header) is column


@pytest.mark.parametrize("header, column", [
    ("Phone 1 - Value", Column.PHONE), ("Phone 1 - Type", Column.OTHER),
    ("E-mail 2 - Value", Column.EMAIL), ("E-mail Display Name", Column.OTHER),
    ("E-mail 3 Address", Column.EMAIL), ("Business Fax", Column.OTHER),
    ("TTY/TDD Phone", Column.OTHER), ("Mobile Phone", Column.PHONE),
    ("Telex", Column.OTHER), ("Hotel", Column.OTHER), ("phone2", Column.PHONE),
    ("phone", Column.PHONE), ("Email", Column.EMAIL), ("Given Name", Column.FIRST),
])
def test_csv_columns_are_recognised_by_name(header: str, column: Column) -> None:
    assert classify(header) is column


# -- streaming -----------------------------------------------------------------------------

def _in_chunks(data: bytes, size: int) -> tuple[list[Contact], object]:
    reader = ContactReader(region="NO")
    contacts: list[Contact] = []
    for start in range(0, len(data), size):
        contacts += reader.feed(data[start:start + size])
    contacts += reader.close()
    return contacts, reader.report


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir()
                                        if p.suffix in (".vcf", ".csv")
                                        and p.name != "not-contacts.csv"))
@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
def test_any_chunking_reads_the_same(monkeypatch: pytest.MonkeyPatch, name: str,
                                     size: int) -> None:
    """CRLF, UTF-16 pairs, soft line breaks and quotes cut at any byte read the same."""
    monkeypatch.setattr(text_module, "SNIFF_BYTES", 64)
    data = corpus(name)
    whole = read_all(data, region="NO")
    chunked = _in_chunks(data, size)
    if name == "mixed-encodings.csv":
        # Which line is the odd one out depends on how much of the file was sniffed.
        assert [(c.label, c.phones, c.emails) for c in chunked[0]] == \
            [(c.label, c.phones, c.emails) for c in whole[0]]
        return
    assert chunked[0] == whole[0]
    assert chunked[1].problems == whole[1].problems  # type: ignore[attr-defined]


def _cards(count: int) -> Iterator[bytes]:
    for i in range(count):
        phone = f"TEL;type=CELL:+47 4{i:07d}\r\n"
        yield (f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Person{i};Test;;;\r\nFN:Test Person {i}\r\n"
               f"{phone}EMAIL:person{i}@example.org\r\n"
               "NOTE:a note that makes this card about as long as a real one is, with an "
               "address\r\n and a folded line\r\nEND:VCARD\r\n").encode()


def _chunks(parts: Iterator[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    buffer = bytearray()
    for part in parts:
        buffer += part
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


STREAM_100K = """
import resource, sys
from bridges.contacts.importers import ContactReader
from tests.unit.test_contacts_importers import _cards, _chunks

from bridges.contacts.normalise import normalise_email, normalise_phone

normalise_phone("+4791234567"), normalise_email("a@example.no")  # load the number metadata
reader = ContactReader(region="NO")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
read = size = 0
for chunk in _chunks(_cards(100_000)):
    size += len(chunk)
    read += len(reader.feed(chunk))  # each chunk's contacts are dropped at once
read += len(reader.close())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(read, reader.report.identifiers, size, (after - before) * 1024)
"""


def test_a_100000_contact_file_streams_in_little_memory() -> None:
    """Peak memory (RSS, in a fresh process) grows far less than the file's size."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", STREAM_100K], cwd=root, capture_output=True,
                          text=True, timeout=600, check=True)
    read, identifiers, size, growth = map(int, done.stdout.split())
    assert read == 100_000 and identifiers == 200_000
    assert size > 20_000_000
    # What is held: a chunk, a line, a card, and 8-16 bytes per distinct identifier.
    assert growth < size / 2, f"grew {growth / 2**20:.1f} MiB for {size / 2**20:.0f} MiB"


def test_digest_set() -> None:
    seen = DigestSet(capacity=4)
    assert all(seen.add(n) for n in range(1, 1000))
    assert not any(seen.add(n) for n in range(1, 1000))
    assert len(seen) == 999


# -- hostile input -------------------------------------------------------------------------

def test_truncated_vcard_is_a_partial_import_with_a_report() -> None:
    contacts, report = read_all(corpus("truncated.vcf"))
    assert [c.label for c in contacts] == ["Ola Nordmann", "山田 太郎", "Jürgen Müller"]
    problems = [p.describe() for p in report.problems]
    assert any("Анна Иванова" in p and "cut short" in p for p in problems)


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20,
    b"PK\x03\x04\x14\x00\x06\x00" + bytes(4000),
    bytes(range(1, 32)) * 200,
    "BEGIN:VCARD".encode("utf-32-le"),  # UTF-32 without its BOM: too many zero bytes
])
def test_binary_files_are_refused_clearly(data: bytes) -> None:
    with pytest.raises(ImportFailed) as refused:
        read_all(data)
    assert "file" in refused.value.message


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-be"])
def test_utf32_with_a_bom_is_read(encoding: str) -> None:
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Анна Иванова\r\nTEL:+7 912 345-67-89\r\nEND:VCARD\r\n"
    data = card.encode(encoding)
    if encoding == "utf-32-be":
        data = b"\x00\x00\xfe\xff" + data
    contacts, report = read_all(data)
    assert (report.format, report.encoding) == ("vCard", "UTF-32")
    assert [(c.label, c.phones) for c in contacts] == [("Анна Иванова", ("+79123456789",))]


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n  \n", b"\xef\xbb\xbf"])
def test_empty_files_are_refused(data: bytes) -> None:
    with pytest.raises(ImportFailed, match="empty"):
        read_all(data)


def test_a_csv_of_something_else_is_refused() -> None:
    with pytest.raises(ImportFailed, match="name,phone,email"):
        read_all(corpus("not-contacts.csv"))


def test_formula_injection_is_only_text() -> None:
    contacts, report = read_all(corpus("formula.csv"), region="NO")
    labels = [c.label for c in contacts] + [p.label for p in report.problems]
    assert labels and all(not label.startswith(("=", "+", "-", "@")) for label in labels)
    assert "'=cmd|' /C calc'!A0" in labels
    # A formula in a phone cell is an unreadable number, and is not repeated.
    problems = " ".join(p.problem for p in report.problems)
    assert "HYPERLINK" not in problems and "cmd" not in problems
    assert by_label(contacts)["'=cmd|' /C calc'!A0"].phones == ("+4741234567",)


def test_mixed_encodings_read_line_by_line() -> None:
    contacts, report = read_all(corpus("mixed-encodings.csv"))
    assert [c.label for c in contacts] == ["Ola Nordmann", "张伟", "Jürgen Müller"]
    assert any("may show wrongly" in p.problem for p in report.problems)


def test_a_million_empty_cards_stop_at_the_cap() -> None:
    reader = ContactReader(max_contacts=10_000)
    fed = 0
    for chunk in _chunks(iter([b"BEGIN:VCARD\r\nEND:VCARD\r\n"] * 1_000_000)):
        reader.feed(chunk)
        fed += len(chunk)
        if reader.done:
            break
    reader.close()
    assert reader.done and reader.report.stopped_at_limit == 10_000
    assert fed < 2 * 2**20  # the caller stopped reading long before the end
    assert any("more than 10,000 contacts" in note for note in reader.report.notes)


def test_deeply_nested_cards_are_skipped_not_followed() -> None:
    depth = 50_000
    data = (b"BEGIN:VCARD\r\nFN:Outer\r\nTEL:+4791234567\r\n" + b"BEGIN:VCARD\r\n" * depth
            + b"TEL:+4741234567\r\n" + b"END:VCARD\r\n" * depth + b"END:VCARD\r\n")
    contacts, report = read_all(data)
    assert [c.phones for c in contacts] == [("+4791234567",)]
    assert any("nested too deep" in p.problem for p in report.problems)


def test_a_file_without_line_breaks_does_not_fill_memory() -> None:
    reader = ContactReader()
    reader.feed(b"BEGIN:VCARD\r\nFN:x\r\nTEL:+4791234567\r\n")
    tracemalloc.start()
    try:
        for _ in range(200):  # 50 MB of one endless line
            reader.feed(b"A" * (256 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    reader.feed(b"\r\nEND:VCARD\r\n")
    contacts = reader.close()
    assert peak < 4 * 2**20
    assert contacts[0].phones == ("+4791234567",)
    assert any("too long" in note for note in reader.report.notes)


def test_invalid_numbers_and_addresses_are_reported_per_contact() -> None:
    data = (b"name,phone,email\n"
            b"Short,12,\n"
            b"Letters,call me maybe,\n"
            b"Unassigned,+1 555 555 5555,\n"
            b"Bad mail,,ola@@example\n"
            b"Good,+4791234567,good@example.no\n")
    contacts, report = read_all(data, region="NO")
    assert [c.label for c in contacts] == ["Good"]
    assert {p.label for p in report.problems} == {"Short", "Letters", "Unassigned", "Bad mail"}
    text = " ".join(p.describe() for p in report.problems)
    assert "555" not in text and "ola@@" not in text


def test_an_unclosed_quote_does_not_swallow_the_file() -> None:
    row = 'Ola,+4791234567,"never closed\n'
    data = ("name,phone,email\n" + row + "x\n" * 2_000 + "Kari,+4741234567,\n").encode()
    contacts, report = read_all(data)
    assert any("could not be read" in note for note in report.notes)
    assert "+4741234567" in all_phones(contacts)
