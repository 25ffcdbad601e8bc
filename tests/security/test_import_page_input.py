"""Hostile and odd files on the in-browser import page: whatever the bytes, its scripts
read them as the bot's importers do (the same encoding, lines, columns and contacts, or the
same refusal) and never throw. Seeded random files in one Node run (the harness of
tests/unit/test_contacts_import_page.py).
"""

from __future__ import annotations

import random

from tests.unit.test_contacts_import_page import _read_as_the_bot, _run_page

PIECES = [
    "姓名,手机,邮箱", "名字,电话,电子邮箱", "氏名,携帯電話,メールアドレス", "Prénom;Nom;Courriel",
    "Имя,Телефон 1 — значение", "name,phone,email", "张伟,138 0013 8000,zw@example.cn",
    "山田太郎,090-1234-5678,t@example.jp", "François,06 12 34 56 78", "\"a,\"\"b\"\",c",
    "=cmd|' /C calc'!A0,+47 1", "\"open quote,1", "", "Ærø;Œuvre;“x”", "電話,電子郵件",
    "姓名,行動電話,電子郵件", "陳大文,0912 345 678,dw@example.tw", "Åse;Müller",
]
ENCODINGS = ["utf-8", "gbk", "cp950", "cp932", "cp1252", "utf-16", "utf-16-le", "utf-8-sig"]
JUNK = [b"\x80", b"\xff\xfe", b"\x00", b"\x81\x30", b"\xa1", b"\r", b"\x1b[0m", b"\xef\xbb",
        b"\xc6\xa1", b"\xc7\xfd", b"\xa3\xc0", b"\xc8\xa4", b"\x87\x40"]


def _random_file(rng: random.Random) -> bytes:
    encoding = rng.choice(ENCODINGS)
    lines = []
    for _ in range(rng.randint(1, 8)):
        text = rng.choice(PIECES)
        line_encoding = encoding if rng.random() < 0.8 or "16" in encoding else rng.choice(
            ["utf-8", "gbk", "cp950", "cp932", "cp1252"])
        data = text.encode(line_encoding, errors="ignore")
        if rng.random() < 0.15 and "16" not in encoding:
            data += rng.choice(JUNK)
        lines.append(data)
    ending = rng.choice([b"\n", b"\r\n", b"\r"])
    if "16" in encoding:
        ending = ending.decode().encode(encoding)[2 if encoding == "utf-16" else 0:]
    return ending.join(lines)


def test_random_files_read_the_same_in_the_page_and_the_bot() -> None:
    rng = random.Random(15)
    files = {f"random-{i}.csv": _random_file(rng) for i in range(300)}
    page = _run_page(files, [], [], [])
    for name, data in files.items():
        bot = _read_as_the_bot(data, csv=True)
        browser = page["files"][name]
        if "not_text" in bot:
            assert browser == bot, name
            continue
        assert (browser["encoding"], browser["lines"]) == (bot["encoding"], bot["lines"]), name
        assert ("refused" in browser) == ("refused" in bot), name
        for key in ("format", "columns", "contacts"):
            assert browser.get(key) == bot.get(key), (name, key)
