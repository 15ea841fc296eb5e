"""A corpus for measuring the redaction detectors, generated at run time from a seed.

Positives come from a generator independent of the detectors: Faker, in several locales,
for e-mail addresses, phone numbers, card numbers of several brands, IBANs of many
countries and IP addresses; keys and tokens in their providers' published shapes from a
seeded `random.Random`. Each is embedded in a prompt-like sentence. Negatives are what sits
next to them in real prompts and must not be redacted: code, UUIDs, hex digests, order
numbers, timestamps, version strings and plain numbers.

Faker's output is kept only where it is what the kind means, by these rules (and never by
listing values):

* phone: 8 to 15 digits (E.164 allows at most 15; fewer than 8 is a local number without
  its area code). A number written as a bare run of digits, with no ``+``/``00`` country
  code, no trunk ``0`` and no separators, cannot be told from any other number, so it is
  embedded after a word that says it is a phone number ("phone: …");
* card: 13 to 19 digits (Faker's Maestro numbers may have 12);
* IBAN: Faker locales of countries in the SWIFT IBAN registry (Faker falls back to a
  made-up GB format of the wrong length for locales without a bank format);
* IP: not loopback or 0.0.0.0, which identify no one;
* AWS secret access keys: written near the words "aws" or "secret", as every
  configuration file and SDK error names them (a bare 40-character base64 string is any
  base64).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import re
import string
import uuid
from dataclasses import dataclass

from faker import Faker

PHONE_LOCALES = ["en_US", "de_DE", "fr_FR", "en_GB", "it_IT", "es_ES", "nl_NL", "pt_BR",
                 "ja_JP", "pl_PL"]  # fmt: skip
IBAN_LOCALES = ["de_AT", "de_CH", "cs_CZ", "da_DK", "de_DE", "el_GR", "en_GB", "en_IE",
                "es_ES", "fi_FI", "fr_FR", "it_IT", "nl_BE", "nl_NL", "no_NO", "pl_PL",
                "pt_BR", "pt_PT", "ro_RO", "sk_SK", "tr_TR", "uk_UA"]  # fmt: skip
CARD_BRANDS = ["visa13", "visa16", "visa19", "mastercard", "amex", "discover", "jcb15",
               "jcb16", "diners", "maestro"]  # fmt: skip
KINDS = ("email", "phone", "card", "iban", "ip", "aws_access_key", "aws_secret_key",
         "openai_key", "anthropic_key", "llmtrail_key", "jwt", "bearer")  # fmt: skip
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"


@dataclass(frozen=True)
class Sample:
    """``value`` (a ``kind``, or nothing to find when ``kind`` is empty) inside ``text``."""

    kind: str
    value: str
    text: str
    source: str

    @property
    def start(self) -> int:
        return self.text.index(self.value)


_PROSE = [
    "Please update the customer record: {}. Thanks!",
    "Can you draft a reply to the client? Their details: {}",
    "Summarise this ticket. Reporter wrote '{}' in the form.",
    "Ich habe {} angegeben, bitte prüfen.",
    "Voici mes coordonnées : {} — merci de me recontacter.",
    '{{"role": "user", "content": "contact: {}"}}',
    "The log line said: value={}, status=ok",
    "{}",
]
_PHONE_WORDS = ["Call me at {}", "phone: {}", "Tel. {}", "My mobile number is {}",
                "WhatsApp {} after 6pm"]  # fmt: skip


def _pick(rng: random.Random, chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def _b64url(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _digits(value: str) -> str:
    return re.sub(r"[^0-9]", "", value)


def _phone_written_as_phone(value: str) -> bool:
    """Country code, trunk 0, parentheses or separators: written the way phones are."""
    return value.startswith(("+", "0", "(")) or bool(re.search(r"[0-9][ .\-][0-9]", value))


def _card_format(rng: random.Random, digits: str) -> str:
    style = rng.choice(["plain", "space", "dash"])
    if style == "plain":
        return digits
    sep = " " if style == "space" else "-"
    if len(digits) == 15 and digits[:2] in ("34", "37"):
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    if len(digits) in (16, 19):
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return digits


def _faker_values(kind: str, rng: random.Random, seed: int, n: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    locales = {"phone": PHONE_LOCALES, "iban": IBAN_LOCALES}.get(kind, PHONE_LOCALES)
    fakers = {loc: Faker(loc) for loc in locales}
    for i, fake in enumerate(fakers.values()):
        fake.seed_instance(seed * 1000 + i)
    while len(out) < n:
        loc = rng.choice(locales)
        fake = fakers[loc]
        if kind == "email":
            value = rng.choice([fake.email, fake.free_email, fake.company_email])()
        elif kind == "phone":
            value = fake.phone_number()
            if not 8 <= len(_digits(value.split("x")[0])) <= 15:
                continue
        elif kind == "card":
            brand = rng.choice(CARD_BRANDS)
            digits = fake.credit_card_number(brand)
            if not 13 <= len(digits) <= 19:
                continue
            value, loc = _card_format(rng, digits), f"{loc} {brand}"
        elif kind == "iban":
            value = fake.iban()
            if rng.random() < 0.4:  # the printed form, in groups of four
                value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        else:  # ip
            value = rng.choice([fake.ipv4, fake.ipv4_private, fake.ipv4_public, fake.ipv6])()
            ip = ipaddress.ip_address(value)
            if ip.is_loopback or ip.is_unspecified:
                continue
        out.append((value, f"faker {loc}"))
    return out


def _generated(kind: str, rng: random.Random) -> str:
    if kind == "aws_access_key":
        return rng.choice(["AKIA", "ASIA"]) + _pick(rng, string.ascii_uppercase + "234567", 16)
    if kind == "aws_secret_key":
        return _pick(rng, B64, 40)
    if kind == "openai_key":
        return rng.choice(["sk-" + _pick(rng, ALNUM, 48), "sk-proj-" + _pick(rng, URLSAFE, 156)])
    if kind == "anthropic_key":
        return "sk-ant-api03-" + _pick(rng, URLSAFE, 93) + "AA"
    if kind == "llmtrail_key":
        return f"ltk_{_pick(rng, '0123456789abcdef', 12)}_{_pick(rng, URLSAFE, 43)}"
    if kind == "jwt":
        header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
        payload = {
            "sub": str(rng.randrange(10**9)),
            "iat": rng.randrange(1_600_000_000, 1_800_000_000),
        }
        signature = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
        return f"{_b64url(header)}.{_b64url(payload)}.{signature}"
    # bearer: an opaque token
    return rng.choice([_pick(rng, "0123456789abcdef", 40), _pick(rng, URLSAFE, 64)])


_KEY_TEMPLATES = {
    "aws_secret_key": ["aws_secret_access_key = {}", "AWS_SECRET_ACCESS_KEY={}",
                       '{{"SecretAccessKey": "{}"}}', "my aws secret is {} please rotate it"],
    "bearer": ["Authorization: Bearer {}", "curl -H 'Authorization: bearer {}' https://api",
               '{{"headers": {{"authorization": "Bearer {}"}}}}'],
}  # fmt: skip


def positives(per_kind: int, seed: int = 7) -> list[Sample]:
    """``per_kind`` samples of every kind in `KINDS`, each in a sentence."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for kind in KINDS:
        if kind in ("email", "phone", "card", "iban", "ip"):
            values = _faker_values(kind, rng, seed, per_kind)
        else:
            values = [(_generated(kind, rng), "generated") for _ in range(per_kind)]
        for value, source in values:
            template = rng.choice(_KEY_TEMPLATES.get(kind, _PROSE))
            if kind == "phone" and (not _phone_written_as_phone(value) or rng.random() < 0.3):
                template = rng.choice(_PHONE_WORDS)
            samples.append(Sample(kind, value, template.format(value), source))
    return samples


_CODE = [
    "for i in range({n}):\n    total += weights[i] * {m}\nreturn total / {n}",
    "SELECT order_id, SUM(amount) FROM orders WHERE created_at > '{date}' GROUP BY 1 LIMIT {n}",
    "const timeout = {n}; fetch(`/api/items/${{id}}?page={m}`).then(r => r.json())",
    "docker run -p {p}:{p} -e WORKERS={m} registry.local/app:{ver}",
    'File "/srv/app/handlers.py", line {n}, in process\n    raise ValueError("bad id {m}")',
    "git checkout {sha7} && pip install app=={ver}",
    "color: #{hex6}; margin: {m}px {n}px; z-index: {n};",
    "matrix = np.zeros(({m}, {n})); matrix[::2] = x @ w.T",
    "std::vector<int> v({n}); auto it = v.begin() + {m};",
    "x = re.compile(r'^[a-z0-9]{{3,16}}$'); assert x.match('user_{m}')",
]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _negative(kind: str, rng: random.Random) -> str:
    n, m = rng.randrange(1, 5000), rng.randrange(1, 10**6)
    date = f"20{rng.randrange(10, 30)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    ver = f"{rng.randrange(0, 30)}.{rng.randrange(0, 40)}.{rng.randrange(0, 200)}"
    if kind == "code":
        return rng.choice(_CODE).format(
            n=n, m=m, p=rng.randrange(1024, 65535), date=date, ver=ver,
            sha7=rng.randbytes(4).hex()[:7], hex6=rng.randbytes(3).hex(),
        )  # fmt: skip
    if kind == "uuid":
        return _uuid(rng)
    if kind == "hash":
        algo = rng.choice([hashlib.md5, hashlib.sha1, hashlib.sha256])
        digest = algo(rng.randbytes(16)).hexdigest()
        return digest.upper() if rng.random() < 0.2 else digest
    if kind == "order":
        return rng.choice([
            f"ORD-{rng.randrange(2019, 2027)}-{rng.randrange(10**6):06d}",
            f"#{rng.randrange(10**5, 10**7)}",
            f"PO {rng.randrange(4500000000, 4599999999)}",
            f"INV-{rng.randrange(10**4, 10**6)}",
            f"order {rng.randrange(10**7, 10**8)}",
            f"SO{rng.randrange(10**8, 10**9)}",
        ])  # fmt: skip
    if kind == "timestamp":
        hms = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        return rng.choice([
            f"{date}T{hms}.{rng.randrange(1000):03d}Z", f"{date} {hms}",
            f"{date} {hms}.{rng.randrange(10**6):06d}",
            str(rng.randrange(1_500_000_000, 1_900_000_000)),
            str(rng.randrange(1_500_000_000_000, 1_900_000_000_000)),
            f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/20{rng.randrange(10, 30)} "
            f"{hms[:5]}",
            f"{rng.randrange(1, 29):02d}.{rng.randrange(1, 13):02d}.20{rng.randrange(10, 30)}",
        ])  # fmt: skip
    if kind == "version":
        return rng.choice([
            ver, f"v{ver}", f"v{ver}-rc.{rng.randrange(1, 5)}", f"Python {ver}",
            f"Chrome/{rng.randrange(90, 130)}.0.{rng.randrange(1000, 7000)}.{rng.randrange(200)}",
            f"version {ver}.{rng.randrange(0, 50)}", f"v{ver}.{rng.randrange(0, 50)}",
        ])  # fmt: skip
    # plain numbers
    value = rng.randrange(10 ** rng.randrange(1, 12))
    return rng.choice([
        str(value), f"{value:,}", f"{value:,}".replace(",", "."), f"{value / 100:,.2f} EUR",
        f"{rng.random() * 100:.4f}", f"{rng.randrange(100)}%",
    ])  # fmt: skip


NEGATIVE_KINDS = ("code", "uuid", "hash", "order", "timestamp", "version", "number")
_NEGATIVE_PROSE = [
    "Reference {} was processed without errors.",
    "See {} for details.",
    '{{"id": "{}", "ok": true}}',
    "{}",
    "Build failed at step 3 ({}), retrying.",
    "The secret sauce is consistency: {}",
]


def negatives(count: int, seed: int = 7) -> list[Sample]:
    """``count`` texts with nothing a detector should find, spread over `NEGATIVE_KINDS`."""
    rng = random.Random(seed + 1)
    samples = []
    for i in range(count):
        kind = NEGATIVE_KINDS[i % len(NEGATIVE_KINDS)]
        value = _negative(kind, rng)
        samples.append(Sample("", value, rng.choice(_NEGATIVE_PROSE).format(value), kind))
    return samples
