"""Opt-in detectors of personal data: e-mail addresses, phone numbers, payment card numbers,
IBANs and IP addresses. A workspace turns each on in its redaction policy.

Each is a candidate pattern plus a check, and each check is a documented rule, because a
digit run alone cannot say what it is:

* card: 13–19 digits (plain, or grouped 4-4-4-4[-3], 4-6-5 or 4-6-4 by spaces or dashes)
  with an issuer prefix (Visa, Mastercard, Amex, Discover, JCB (35…, 1800, 2131), Diners,
  Maestro, UnionPay, Mir) and a valid Luhn check digit;
* IBAN: a country of the SWIFT IBAN registry, that country's length, and mod-97 = 1;
* phone: 8–15 digits written as a phone number is written — with a ``+``/``00`` country
  code, a national trunk ``0``, an area code in parentheses, or three or more groups
  separated by spaces, dots or dashes (not a date, not a thousands-separated amount); a bare
  run of digits is a phone only right after a word such as *phone*, *tel* or *call*;
* IPv4: four octets, not after ``v``/``version`` (a version string), not loopback or
  0.0.0.0; IPv6: what `ipaddress` parses, with at least three non-empty groups (so
  ``a::b`` in code and times such as ``10:30:15`` are not addresses);
* e-mail: local part, ``@``, a domain whose last label is alphabetic and not a file
  extension (``icon@2x.png``).
"""

from __future__ import annotations

import ipaddress
import re

from llmtrail.security.detectors import Detector, Finding, regex_detector

# -- e-mail ---------------------------------------------------------------------------------
_FILE_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "css", "js", "ts", "py",
     "json", "yaml", "yml", "md", "txt", "html", "htm", "xml", "pdf", "zip", "gz", "tar",
     "mp3", "mp4", "wav"}
)  # fmt: skip


def _email(match: re.Match[str]) -> str | None:
    local, domain = match.group("local"), match.group("domain")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    tld = domain.rsplit(".", 1)[-1].lower()
    if tld in _FILE_EXTENSIONS:
        return None
    return f"{local}@{domain.lower()}"


EMAIL = regex_detector(
    "email",
    r"(?<![A-Za-z0-9._%+\-])(?P<local>[A-Za-z0-9._%+\-]{1,64})@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24})"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])",
    ("@",),
    _email,
    rank=30,
)


# -- payment cards --------------------------------------------------------------------------
def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The issuer a PAN's prefix and length belong to (ISO/IEC 7812 ranges), or None."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649) and 16 <= n <= 19:
        return "discover"
    if (two == 35 and 16 <= n <= 19) or (four in (1800, 2131) and n == 15):
        return "jcb"
    if (300 <= int(digits[:3]) <= 305 or two in (36, 38, 39)) and 14 <= n <= 19:
        return "diners"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    if 2200 <= four <= 2204 and 16 <= n <= 19:
        return "mir"
    if (two == 50 or 56 <= two <= 69 or 622126 <= six <= 622925) and 13 <= n <= 19:
        return "maestro"
    return None


def _card(match: re.Match[str]) -> str | None:
    digits = re.sub(r"[ \-]", "", match.group(0))
    if not 13 <= len(digits) <= 19 or card_brand(digits) is None or not luhn_ok(digits):
        return None
    return digits


CARD = regex_detector(
    "card",
    r"(?<![A-Za-z0-9_\-.])(?:"
    r"[0-9]{4}([ \-])[0-9]{4}\1[0-9]{4}\1[0-9]{4}(?:\1[0-9]{3})?"  # 4-4-4-4[-3]
    r"|[0-9]{4}([ \-])[0-9]{6}\2[0-9]{4,5}"  # Amex 4-6-5, Diners 4-6-4
    r"|[0-9]{13,19}"
    r")(?![0-9]|[.,][0-9])",
    ("0000",),
    _card,
    rank=20,
)


# -- IBAN -----------------------------------------------------------------------------------
# Length of the IBAN of each country of the SWIFT IBAN registry.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IR": 26, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip


def iban_ok(iban: str) -> bool:
    """Registry country, its length, and the ISO 7064 mod-97 check."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


_IBAN_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){10,30}", re.ASCII | re.IGNORECASE
)


def _find_ibans(text: str) -> list[Finding]:
    """Candidates run on while letters and digits follow (``DE89 3704 … 00 BIC``): the IBAN
    is the first ``length`` of them for its country, ending at a word's end."""
    found = []
    for match in _IBAN_CANDIDATE.finditer(text):
        start = match.start()
        country = text[start : start + 2].upper()
        length = IBAN_LENGTHS.get(country)
        if length is None:
            continue
        chars: list[str] = []
        end = start
        limit = match.end()
        while end < limit and len(chars) < length:
            if text[end] != " ":
                chars.append(text[end].upper())
            end += 1
        if len(chars) != length or (end < len(text) and text[end].isalnum()):
            continue
        iban = "".join(chars)
        if iban_ok(iban):
            found.append(Finding(start, end, "iban", iban))
    return found


IBAN = Detector("iban", _find_ibans, ("00",), rank=22)


# -- phone numbers --------------------------------------------------------------------------
_SEP = r"[ .\-]"
_EXT = r"(?:[ ]?(?:x|ext\.?|extension)[ ]?[0-9]{1,6})?"
# Every alternative separates its digit groups by a mandatory separator or parenthesis, so a
# digit run splits one way only and a failing candidate costs linear time.
PHONE_PATTERN = (
    r"(?<![A-Za-z0-9_+\-./])(?:"
    # a country code: +CC or 00CC, then groups; a (0) trunk or (area) allowed
    r"(?P<intl>(?:\+|00)[1-9][0-9]{0,14}"
    rf"(?:(?:{_SEP}?\(0?[0-9]{{0,4}}\){_SEP}?|{_SEP})[0-9]{{1,14}}){{0,6}})"
    # an area code in parentheses: (555) 123-4567, (0406)-812415, (011) 1234-5678
    rf"|(?P<paren>\([0-9]{{1,5}}\){_SEP}?[0-9]{{2,10}}(?:{_SEP}[0-9]{{2,8}}){{0,3}})"
    # a national trunk 0: 030 1234567, 0123456789, 01 23 45 67 89, 030/1234567
    rf"|(?P<trunk>0[0-9]{{1,13}}(?:(?:{_SEP}|/)[0-9]{{2,8}}){{0,4}})"
    # three or more groups: 555-123-4567, 12 3915-0008, 609 141 777
    rf"|(?P<groups>[1-9][0-9]{{1,4}}(?:{_SEP}[0-9]{{2,5}}){{2,4}})"
    # a bare run: a phone only right after a phone word (checked below)
    r"|(?P<bare>[1-9][0-9]{7,13})"
    rf"){_EXT}(?![A-Za-z0-9_]|[\-./:,][0-9])"
)
_PHONE_WORD_BEFORE = re.compile(
    r"(?:phone|tel|telephone|telefon|téléphone|mobile|mobil|cell|call|handy|sms|whatsapp|fax)"
    r"\.?(?:[ :#]|number|no\.?|nr\.?|is|at|me|on|\(|\)){1,8}$",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"[0-9]{4}[\-./][0-9]{1,2}[\-./][0-9]{1,2}|[0-9]{1,2}[\-./][0-9]{1,2}[\-./][0-9]{2,4}"
)
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:([.,'])[0-9]{3})(?:\1[0-9]{3})+")
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def _phone(match: re.Match[str]) -> str | None:
    text = match.group(0)
    number = re.split(r"[ ]?(?:x|ext|extension)", text, maxsplit=1)[0]
    digits = re.sub(r"[^0-9]", "", number)
    if not 8 <= len(digits) <= 15:
        return None
    if match.group("bare"):
        before = match.string[max(0, match.start() - 32) : match.start()]
        if not _PHONE_WORD_BEFORE.search(before):
            return None
    elif match.group("groups") or match.group("trunk"):
        if _DATE.fullmatch(number) or _THOUSANDS.fullmatch(number):
            return None
        if _DOTTED_QUAD.fullmatch(number):
            return None  # an IPv4 address
        if match.group("trunk") and len(digits) < 9:
            return None
    plus = "+" if number.startswith("+") else ""
    return plus + digits


PHONE = regex_detector("phone", PHONE_PATTERN, ("00",), _phone, rank=26)


# -- IP addresses ---------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_VERSION_BEFORE = re.compile(r"(?:\bv|version|release|build|ver\.?)\s*$", re.IGNORECASE)


def _ipv4(match: re.Match[str]) -> str | None:
    address = match.group(0)
    before = match.string[max(0, match.start() - 12) : match.start()]
    if _VERSION_BEFORE.search(before):
        return None
    ip = ipaddress.IPv4Address(address)
    if ip.is_loopback or ip.is_unspecified:
        return None
    return address


IPV4 = regex_detector(
    "ip",
    rf"(?<![A-Za-z0-9_.\-]){_OCTET}(?:\.{_OCTET}){{3}}(?![A-Za-z0-9_\-]|\.[0-9])",
    ("0.0",),
    _ipv4,
    rank=28,
)


def _ipv6(match: re.Match[str]) -> str | None:
    address = match.group(0)
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return None
    if sum(1 for part in address.split(":") if part) < 3 or ip.is_loopback:
        return None
    return ip.compressed


IPV6 = regex_detector(
    "ip",
    r"(?<![A-Za-z0-9_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|"
    rf"{_OCTET}(?:\.{_OCTET}){{3}})?(?![A-Za-z0-9_:]|\.[0-9A-Za-z])",
    ("0:", "a:", "b:", "c:", "d:", "e:", "f:", "::"),
    _ipv6,
    rank=29,
)

# the opt-in detectors by the name a policy turns them on with
PII_DETECTORS: dict[str, tuple[Detector, ...]] = {
    "email": (EMAIL,),
    "phone": (PHONE,),
    "card": (CARD,),
    "iban": (IBAN,),
    "ip": (IPV4, IPV6),
}
