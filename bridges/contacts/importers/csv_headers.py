"""What address-book exports call their columns, in the languages people have. Pure.

Phones, webmail and Excel write a CSV's first row in the user's language: `姓名,手机,邮箱`
from a Chinese sheet, `Vorname,Nachname,Mobiltelefon` from German Outlook, `Телефон 1 —
значение` from a Russian Google export. `classify` reads English, Chinese (simplified and
traditional), Japanese, Spanish, Portuguese, German, French and Russian headers, ignoring
case, accents, numbers ("E-mail 2", "电话2") and the punctuation between words.

Names are matched whole (a "Name" column, but not "Assistant's Name"); phone and email
columns by a word in them ("Mobiltelefon", "Business Phone 2"), unless another word says
the column holds something else: a fax or pager number, a type, a label or a display name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any

# What stands between words in a header, besides white space.
SEPARATOR_CHARS = "-‐‑‒–—―_:;.,/\\()[]{}'’\"#№*·・"
_SEPARATORS = re.compile(f"[\\s{re.escape(SEPARATOR_CHARS)}]+")
_DIGITS = re.compile(r"\d+")


class Column(Enum):
    FULL_NAME = "full name"
    FIRST = "first name"
    MIDDLE = "middle name"
    LAST = "last name"
    NICKNAME = "nickname"
    ORGANIZATION = "organization"
    PHONE = "phone"
    EMAIL = "email"
    OTHER = "other"


def normalise(header: str) -> str:
    """A header as compared: no accents, case folded, words split by single spaces."""
    text = unicodedata.normalize("NFKD", header.strip().strip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(_SEPARATORS.sub(" ", text).split())


def _names(column: Column, *headers: str) -> dict[str, Column]:
    return {normalise(header): column for header in headers}


_NAMES = {
    **_names(Column.FULL_NAME,
             "Name", "Full Name", "Display Name", "File As",
             "姓名", "名字", "全名", "联系人", "联系人姓名", "聯絡人", "聯絡人姓名", "显示名称",
             "顯示名稱", "名前", "氏名", "表示名",
             "Nombre completo", "Nombre para mostrar", "Nome completo", "Nome de exibição",
             "Vollständiger Name", "Anzeigename", "Speichern unter", "Nom complet",
             "Nom affiché", "Classer sous", "Полное имя", "ФИО", "Отображаемое имя"),
    **_names(Column.FIRST,
             "First Name", "Given Name", "名", "Nombre", "Nome", "Primeiro nome",
             "Vorname", "Prénom", "Имя"),
    **_names(Column.MIDDLE,
             "Middle Name", "Additional Name", "中间名", "ミドル ネーム", "ミドルネーム",
             "Segundo nombre", "Nome do meio", "Weitere Vornamen", "Zweiter Vorname",
             "Deuxième prénom", "Second prénom", "Отчество"),
    **_names(Column.LAST,
             "Last Name", "Family Name", "Surname", "姓", "姓氏", "Apellido", "Apellidos",
             "Sobrenome", "Nachname", "Nom", "Nom de famille", "Фамилия"),
    **_names(Column.NICKNAME,
             "Nickname", "昵称", "暱稱", "ニックネーム", "Apodo", "Spitzname", "Surnom",
             "Псевдоним"),
    **_names(Column.ORGANIZATION,
             "Company", "Organization 1 - Name", "Organization Name", "公司", "公司名称",
             "单位", "公司名稱", "会社", "会社名", "勤務先", "Empresa", "Compañía",
             "Organización", "Organização", "Firma", "Unternehmen", "Société", "Entreprise",
             "Организация", "Компания"),
}


@dataclass(frozen=True)
class Words:
    """Whole `words`, or `parts` anywhere (compounds such as Mobiltelefon, and CJK, which
    has no spaces between words). The import page builds the same matcher from `rule()`."""

    words: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        alternatives = []
        if self.words:
            alternatives.append(r"\b(?:" + "|".join(re.escape(normalise(w)) for w in self.words)
                                + r")\b")
        if self.parts:
            alternatives.append("|".join(re.escape(normalise(p)) for p in self.parts))
        return re.compile("|".join(alternatives))

    def search(self, text: str) -> bool:
        return bool(self.pattern.search(text))

    def fullmatch(self, text: str) -> bool:
        return bool(self.pattern.fullmatch(text))

    def rule(self) -> dict[str, list[str]]:
        return {"words": [normalise(w) for w in self.words],
                "parts": [normalise(p) for p in self.parts]}


_PHONE = Words(
    words=("phone", "tel", "mobile", "cell", "cellphone", "cellular", "callback", "msisdn",
           "móvil", "celular", "movil", "handy", "mobil", "portable", "telemóvel", "тел",
           "мобильный", "сотовый"),
    parts=("telephon", "telefon", "телефон", "电话", "手机", "手機", "電話", "携帯",
           "ケータイ"))
_EMAIL = Words(
    words=("email", "e mail", "mail", "correo", "courriel", "messagerie", "эл почта",
           "эл почты", "электронная почта", "электронной почты", "электронный адрес"),
    parts=("邮箱", "邮件", "郵件", "郵箱", "電郵", "メール"))
# Words saying the column is about the number or address, not it (a fax, its type …).
_TYPE_OR_LABEL = ("type", "typ", "label", "tipo", "etiqueta", "bezeichnung", "étiquette",
                  "тип", "ярлык", "метка")
_NOT_A_PHONE = Words(
    words=_TYPE_OR_LABEL + ("fax", "telex", "tty", "tdd", "pager", "localizador",
                            "buscapersonas", "факс", "телекс", "пейджер"),
    parts=("texttelefon", "radiomessagerie", "télécopie", "传真", "傳真", "寻呼", "類型",
           "类型", "类别", "标签", "標籤", "ファックス", "ファクス", "ポケットベル", "種類", "種別",
           "ラベル", "タイプ"))
_NOT_AN_ADDRESS = Words(
    words=_TYPE_OR_LABEL + ("display", "name", "nom", "nombre", "nome", "имя", "mostrar",
                            "exibição", "affiché"),
    parts=("anzeige", "angezeigt", "отображ", "显示", "顯示", "表示", "类型", "類型", "标签",
           "標籤", "種類", "ラベル", "タイプ"))
_VALUE = Words(words=("value", "valor", "wert", "valeur", "значение"), parts=("值", "値"))


def classify(header: str) -> Column:
    """What a column holds, from its header (Google, Outlook, phone and plain spellings)."""
    name = normalise(header)
    if name in _NAMES:
        return _NAMES[name]
    words = " ".join(_DIGITS.sub(" ", name).split())  # "E-mail 2", "电话2": numbered variants
    is_value = _VALUE.search(words)
    if _EMAIL.search(words):
        return Column.EMAIL if is_value or not _NOT_AN_ADDRESS.search(words) else Column.OTHER
    if _PHONE.search(words):
        return Column.PHONE if is_value or not _NOT_A_PHONE.search(words) else Column.OTHER
    return Column.OTHER


# Google Contacts: "Phone 1 - Value", "E-mail 2 - Label", and translated ("Телефон 1 —
# значение"). Outlook: a header only its export has, in one of its languages.
_GOOGLE_PART = Words(words=("value", "type", "label", "valor", "tipo", "etiqueta", "wert",
                               "typ", "bezeichnung", "valeur", "étiquette", "значение", "тип",
                               "ярлык", "метка"), parts=("值", "値", "类型", "标签"))
_OUTLOOK_ONLY = {normalise(h) for h in (
    "E-mail Address", "Mobile Phone", "E-Mail-Adresse", "Mobiltelefon",
    "Adresse de messagerie", "Téléphone mobile", "Dirección de correo electrónico",
    "Teléfono móvil", "Endereço de email", "Endereço de e-mail", "Telefone celular",
    "Адрес эл. почты", "Мобильный телефон", "电子邮件地址", "移动电话", "電子郵件地址",
    "行動電話", "電子メール アドレス", "携帯電話")}


_GOOGLE_COLUMN = re.compile(r"^(?P<medium>.+?) ?\d+ (?P<part>\S+)$")


def _google_column(name: str) -> bool:
    """`<phone or email> <n> - <value, type or label>`, in any of the languages."""
    match = _GOOGLE_COLUMN.match(name)
    return bool(match and _GOOGLE_PART.fullmatch(match["part"]) and (
        _PHONE.search(match["medium"]) or _EMAIL.search(match["medium"])))


def export_format(headers: list[str]) -> str:
    names = [normalise(h) for h in headers]
    if any(_google_column(name) for name in names):
        return "Google Contacts CSV"
    if any(name in _OUTLOOK_ONLY for name in names):
        return "Outlook CSV"
    return "CSV"


def browser_rules() -> dict[str, Any]:
    """The whole vocabulary as JSON data, for the import page (`import_csv.js`), which
    classifies headers in the browser with the same tables rather than a copy of them."""
    return {
        "separators": SEPARATOR_CHARS,
        "names": {name: column.name for name, column in _NAMES.items()},
        "phone": _PHONE.rule(), "email": _EMAIL.rule(), "not_a_phone": _NOT_A_PHONE.rule(),
        "not_an_address": _NOT_AN_ADDRESS.rule(), "value": _VALUE.rule(),
        "google_part": _GOOGLE_PART.rule(), "outlook_only": sorted(_OUTLOOK_ONLY),
    }
