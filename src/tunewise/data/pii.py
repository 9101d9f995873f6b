"""Find and redact personal data (PII) in training text: fast, offline, transparent rules.

    >>> from tunewise.data.pii import find_pii, redact
    >>> redact("Call me on +44 20 7946 0958, card 4111 1111 1111 1111")[0]
    'Call me on [PHONE], card [CARD]'

Approach. Every type is found by compiled regular expressions plus a validator:
- email: the usual local@domain.tld shape.
- card: 13-19 digits, optionally grouped by spaces or dashes, that pass the Luhn check AND start with a
  known issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, Maestro, UnionPay). A random
  16-digit id passes Luhn one time in ten; the prefix and length rules cut most of those.
- iban: a country code from the IBAN registry with that country's length, and the ISO 13616 mod-97
  check digits; spaced in groups of four or not.
- ssn: US SSNs as ddd-dd-dddd under the SSA rules (area not 000, 666 or 9xx; group not 00; serial not
  0000); spaced or unseparated forms only after a cue ("SSN", "social security").
- ip: IPv4 with valid octets, and IPv6 (validated by `ipaddress`). A dotted quad right after a version
  cue ("v", "version", "release", "build", "upgraded to") is a version, not an address; a bare
  `1.2.3.4` is reported as an IP, because versions with four numeric parts are rare in tickets and a
  missed address costs more than a redacted version string.
- phone: international numbers (`+` or `00` and a country code), NANP `(555) 123-4567`/`555-123-4567`/
  `555.123.4567`, and national numbers with a trunk `0` (UK, German, French, ...) of 9-12 digits. Other
  digit groups count only after a phone cue ("call", "tel", "mobile", ...). Numbers right after an id
  cue ("order", "invoice", "ticket", "tracking", "#", ...) and anything shaped like a date, time, price
  or version are skipped.
- name: capitalised words after a cue: "my name is", "I'm", "this is", "Mr./Ms./Dr.", "ask for",
  "forward this to", valedictions and signature lines ("Regards,\\nAna Souza"), or a capitalised first
  and last name followed by "from"/"(Team Lead)". Names with no cue are missed.
- address: a house number + capitalised street name + street suffix (Street, St, Avenue, Rd, Blvd,
  Lane, Drive, Way, Court, Place, ...) with an optional unit, city, state and ZIP/postcode; German and
  Dutch compounds ("Hauptstraße 5", "Keizersgracht 123"); French, Spanish, Italian and Portuguese forms
  ("12 rue de la Paix", "Calle Mayor 10", "Via Roma 25"), each with an optional postcode and city.
  All-lowercase US addresses ("18 maple drive") are found; lowercase street names elsewhere are not.

Why not a statistical NER: spaCy is not a tunewise dependency and its English models are not published
on the package registry by their authors (only third-party re-uploads), and even the small model tags a
few thousand short texts per second on a CPU, far from the 30,000 rows/s the audit needs to scan a
million rows inside its time budget. Names and addresses are therefore the weakest types here; measured
precision and recall per type are measured by `tests/data/test_pii.py` on the labeled set the rules were
written against (`tests/assets/pii_testset.jsonl`) and on a held-out set written without looking at them
(`tests/assets/pii_heldout.jsonl`); `evaluate_pii(path)` prints the same table for any labeled file.

Speed (about 35,000 support-ticket rows/s on one core; 20,000 before these scans): each scan starts from
what every match must contain, found by a character-class search the regex engine skips through quickly:
a digit run for numbers, '@' for emails, a capitalised word for names (the cue is then looked for just
before it), the last line for a signature.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tunewise.errors import DataError

PII_TYPES: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "ip", "name", "address")
PLACEHOLDERS = {t: f"[{t.upper()}]" for t in PII_TYPES}

# When two matches overlap, the type with the stronger evidence wins (checksums beat shapes).
_PRIORITY = {"email": 0, "iban": 1, "card": 2, "ssn": 3, "ip": 4, "phone": 5, "address": 6, "name": 7}


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: its type (one of PII_TYPES), character span and text."""

    type: str
    start: int
    end: int
    text: str


# --- email --------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+'-])[A-Za-z0-9][A-Za-z0-9._%+'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])")

# --- digit runs: cards, phones, SSNs -------------------------------------------------------------
# One scan finds every run of digits joined by single separators; each run is then classified.
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_SSN_DASHED = re.compile(r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_SSN_LOOSE = re.compile(r"(?!000|666|9)\d{3}[ ]?(?!00)\d{2}[ ]?(?!0000)\d{4}")
_NANP = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_CARD_GROUPING = re.compile(r"\d{13,19}|\d{4}(?:([ -])\d{4}){2,3}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5}")
_SSN_CUE = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?|social)\b[^\w\n]{0,3}(?:is |number |no\.? |# ?)?$")
_PHONE_CUE = re.compile(
    r"(?i)\b(?:call(?:\s+me)?|phone|tel|telephone|mobile|cell|fax|whatsapp|sms|text|ring|reach(?:\s+me)?|"
    r"number|numéro|nummer|telefon|handy|contact|hotline|line|office|desk)\b[^\n]{0,16}$"
)
# Cues strong enough to beat an id cue before them ("order line: call 0612...").
_STRONG_PHONE_CUE = re.compile(r"(?i)\b(?:call|phone|tel|telephone|mobile|cell|fax|whatsapp|sms|ring)\b[^\w\n]{0,4}$")
_ID_CUE = re.compile(
    r"(?i)(?:\b(?:order|invoice|inv|ticket|case|ref|reference|tracking|shipment|id|sku|serial|account|acct|"
    r"po|part|product|lot|batch|build|version|release|code|coupon|employee|duns|tax|vat|siret|siren|"
    r"zip|room|page|step|item|certificate|cert|license|licence|policy|contract|customer|member|registration|"
    r"patent|no\.?)\b|#)[^\w\n]{0,4}(?:\w+[^\w\n]{1,3}){0,2}$"
)
_CARD_CUE = re.compile(r"(?i)\b(?:card|visa|mastercard|amex|credit|debit|cc)\b")
_CARD_PREFIX = re.compile(
    r"4|5[1-5]|2(?:2[2-9][1-9]|2[3-9]|[3-6]|7[01]|720)|3[47]|6(?:011|5|4[4-9]|2)|35(?:2[89]|[3-8])|"
    r"3(?:0[0-5]|[68])|5018|5020|5038|56|57|58|6304|67|6759"
)


_NON_DIGITS = re.compile(r"\D")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _classify_number(text: str, start: int, end: int) -> str | None:
    """The PII type of the digit run text[start:end], or None for ids, dates, prices and the like."""
    run = text[start:end]
    digits = _NON_DIGITS.sub("", run)
    n = len(digits)
    if n < 7:  # every type below needs at least 7 digits; most runs are counts, sizes and short ids
        return None
    before = text[max(0, start - 32):start]
    if _SSN_DASHED.fullmatch(run):
        return "ssn"
    if _DATE_LIKE.fullmatch(run) or run.count(".") == 3 and "+" not in run and " " not in run:
        return None  # dates, dotted quads (the IP pass owns those)
    if 13 <= n <= 19 and _CARD_GROUPING.fullmatch(run) and _CARD_PREFIX.match(digits) and _luhn(digits):
        # "card no 5425 ..." names a card although "no" is also an id cue.
        if not _ID_CUE.search(before) or _CARD_CUE.search(before):
            return "card"
    if n == 9 and _SSN_CUE.search(before) and _SSN_LOOSE.fullmatch(run):
        return "ssn"
    if _ID_CUE.search(before) and not _STRONG_PHONE_CUE.search(before):
        return None
    if n < 7 or n > 15:
        return None
    if run.startswith("+") or run.startswith("00"):
        return "phone" if n >= 8 else None
    if _NANP.fullmatch(run):
        return "phone"
    if run[0] == "0" and 9 <= n <= 12 and not run.startswith("0x"):
        return "phone"
    if run[0] == "(" and n >= 9:
        return "phone"
    if _PHONE_CUE.search(before) and n >= 7:
        return "phone"
    return None


def _extend_phone(text: str, end: int) -> int:
    """Include a trailing extension like '-0' (German switchboards: +49 40 42838-0)."""
    m = re.match(r"-\d{1,4}(?![\w])", text[end:])
    return end + m.end() if m else end


# --- IBAN -----------------------------------------------------------------------------------------
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
# Upper or lower case ("gb29 nwbk ..." as typed in a chat): the country length and mod-97 check keep it precise.
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})((?:[ ]?[A-Za-z0-9]){11,30})")


def _iban_valid(compact: str) -> bool:
    numeric = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(numeric) % 97 == 1


# --- IP addresses ---------------------------------------------------------------------------------
# A CIDR range ("10.0.0.0/8") describes a network, not a host: not reported.
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d|/\d)")
_VERSION_CUE = re.compile(r"(?i)(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|\bupgraded? to|\bupdated? to|\bfirmware)\s?$")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def _find_ips(text: str) -> list[PiiMatch]:
    found = []
    for m in _IPV4.finditer(text):
        if _VERSION_CUE.search(text[max(0, m.start() - 14):m.start()]):
            continue
        found.append(PiiMatch("ip", m.start(), m.end(), m.group()))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            value = m.group()
            if value.count(":") < 2 or ("::" not in value and value.count(":") != 7):
                continue
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                continue
            if not any(c.isdigit() for c in value) and len(value) < 6:
                continue
            found.append(PiiMatch("ip", m.start(), m.end(), value))
    return found


# --- names ----------------------------------------------------------------------------------------
_UP = "A-ZÀ-ÖØ-ÞĀ-Ž"
_LOW = "a-zß-öø-ÿā-ž"
_NAME_TOKEN = rf"[{_UP}][{_LOW}]+(?:[-'’][{_UP}]?[{_LOW}]+)?"
_NAME_WORDS = rf"{_NAME_TOKEN}(?:[ ]{_NAME_TOKEN}){{0,2}}"
_LINE_NAME = re.compile(rf"(?:^|\n)[ \t]*({_NAME_WORDS})[ \t]*$")
_VALEDICTION = re.compile(
    r"(?i)(?:regards|thanks|thank you|cheers|best|sincerely|cordialement|grüßen|saludos|signed)[,.!]?[ \t]*$"
)
# Capitalised words that follow a cue but are not names.
_NOT_NAMES = frozenset("""
i im the a an we our my your you this that it its not no yes so very really sorry happy new here there just
team support sales billing finance accounting operations ops customer success admin admins it hr legal
hello hi hey dear thanks thank all everyone urgent ridiculous unacceptable frustrated again still please
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december acme northwind orbit labs the management department group company inc ltd
gmbh llc corp co and or for from with in on at by to of as is was be been has have had will would can could
google microsoft slack salesforce zapier jira stripe apple amazon outlook iphone android windows chrome safari
firefox edge linux mac macos ios call let see looking sent get will do does did
what why how when where which who also but if
""".split())


def _name_ok(name: str) -> bool:
    words = name.replace(".", " ").split()
    words = [w for w in words if w.lower() not in ("mr", "mrs", "ms", "dr", "prof")]
    return bool(words) and all(w.lower() not in _NOT_NAMES for w in words)


# --- street addresses -----------------------------------------------------------------------------
_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Terrace|"
           r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Loop|Trail|Row|Close|Crescent|Alley)")
_CITY = rf"[{_UP}][{_LOW}]+(?:[ -][{_UP}][{_LOW}]+){{0,2}}(?:[ ](?:am|an der|upon|sur|on|de)[ ][{_UP}][{_LOW}]+)?"
_US_TAIL = (
    r"(?:[ ](?:NW|NE|SW|SE|N|S|E|W))?"
    r"(?:,?[ ](?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|#)\.?[ ]?[\w-]{1,5})?"
    rf"(?:,[ ]{_CITY}(?:,[ ][A-Z]{{2}}[ ]\d{{5}}(?:-\d{{4}})?|[ ][A-Z]{{1,2}}\d[A-Z\d]?[ ]\d[A-Z]{{2}})?)?"
    r"(?:,?[ ][A-Z]{2}[ ]\d{5}(?:-\d{4})?)?"
)
_US_ADDRESS = re.compile(
    rf"(?<![\w.,$€£#-])\d{{1,6}}[A-Za-z]?[ ](?:(?:[NSEW]\.?|North|South|East|West)[ ])?"
    rf"(?:(?:[{_UP}][{_LOW}]+|\d+(?:st|nd|rd|th))[ ]){{1,3}}{_SUFFIX}\b\.?{_US_TAIL}"
)
_US_ADDRESS_LOWER = re.compile(
    r"(?<![\w.,$€£#-])\d{1,6}[ ](?:[a-z]+[ ]){1,2}(?:street|avenue|road|boulevard|lane|drive|court|place|terrace)\b"
)
_EU_POSTCODE = rf"(?:,?[ ](?:\d{{4}}-\d{{3}}|\d{{4,5}}(?:[ ][A-Z]{{2}})?)[ ]{_CITY})?"
_GERMANIC = re.compile(
    rf"(?<![\w])[{_UP}][{_LOW}]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|ring|ufer|gracht|straat|"
    rf"laan|plein|kade|steig|chaussee)[ ]\d{{1,4}}[a-z]?\b{_EU_POSTCODE}"
)
_ROMANCE_BEFORE = re.compile(  # number first: "12 rue de la Paix", "3 place Bellecour"
    rf"(?<![\w.,-])\d{{1,4}}(?:[ ]?(?:bis|ter))?,?[ ](?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|"
    rf"cours|route)[ ](?:(?:de la|de l'|des|du|de|d'|la|le|l')[ ]?)?[{_UP}][\w'’-]+(?:[ ][{_UP}][\w'’-]+){{0,2}}"
    rf"{_EU_POSTCODE}"
)
_ROMANCE_AFTER = re.compile(  # number after: "Calle Mayor 10", "Via Roma 25", "Avenida da Liberdade 110"
    rf"(?<![\w])(?:Calle|Carrer|Avenida|Av\.|Paseo|Plaza|Via|Viale|Piazza|Corso|Largo|Rua|Travessa|Praça)[ ]"
    rf"(?:(?:de|del|da|do|dos|das|della|di)[ ])?[{_UP}][\w'-]+(?:[ ][{_UP}][\w'-]+){{0,2}},?[ ]\d{{1,4}}\b"
    rf"{_EU_POSTCODE}"
)


# --- driver ---------------------------------------------------------------------------------------
# One cheap scan for digit runs (the pattern opens with a character class, so the regex engine skips
# ahead without trying every position); each run is then classified with anchored matches near it.
_RUN = re.compile(r"[+(\d][\d().\-/ +]*")
_RUN_TRAIL = " .-/(+"
_BOUNDARY_BEFORE = frozenset("@/#.,:$€£-_") 
_IPV4_FULL = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
_US_ADDRESS_AT = re.compile(_US_ADDRESS.pattern.replace(r"(?<![\w.,$€£#-])", "", 1))
_US_ADDRESS_LOWER_AT = re.compile(_US_ADDRESS_LOWER.pattern.replace(r"(?<![\w.,$€£#-])", "", 1))
_ROMANCE_BEFORE_AT = re.compile(_ROMANCE_BEFORE.pattern.replace(r"(?<![\w.,-])", "", 1))
_GERMANIC_ENDINGS = ("straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "damm", "ring", "ufer", "gracht",
                     "straat", "laan", "plein", "kade", "steig", "chaussee")
_ROMANCE_WORDS = ("calle", "carrer", "avenida", "av.", "paseo", "plaza", "via ", "viale", "piazza", "corso", "largo",
                  "rua ", "travessa", "praça")
_ROMANCE_SCAN = re.compile("|".join(re.escape(w) for w in _ROMANCE_WORDS))
_NAME_CUE_WORDS = (
    "my name is", "my name's", "i am", "i'm", "this is", "it's", "ask for", "speak to", "spoke with", "talked to",
    "forward this to", "greetings from", "dear", "signed", "regards", "thanks", "thank you", "cheers", "best",
    "sincerely", "cordialement", "grüßen", "saludos", "our ceo", "our cfo", "our cto", "contact:", "name:",
    "mr", "mrs", "ms", "dr", "prof",
)
_VALEDICTIONS = frozenset(("signed", "regards", "thanks", "thank you", "cheers", "best", "sincerely", "cordialement",
                           "grüßen", "saludos"))
_TITLES = frozenset(("mr", "mrs", "ms", "dr", "prof"))
_NAME_AFTER = re.compile(rf"[,.!:]?[ \t]*\n?[ \t]*((?:(?:Mr|Mrs|Ms|Dr|Prof)\.?[ ])?)({_NAME_WORDS})")
_NAME_AFTER_TITLE = re.compile(rf"\.?[ ]({_NAME_WORDS})")
_SIGNATURE_END = re.compile(r"[ \t]*(?:$|\n|[,.;(—–-])")
_CAPITAL = re.compile(rf"[{_UP}](?=[{_LOW}])")
# The cue words spelled backwards, longest first: matched at a position of the reversed text, they find
# the cue that ends at that position of the text. No cue is a suffix of another.
_REVERSED_CUES = re.compile("|".join(re.escape(c[::-1]) for c in sorted(_NAME_CUE_WORDS, key=len, reverse=True)))
_CUE_ENDS = frozenset(c[-1] for c in _NAME_CUE_WORDS)
# "Ana Souza from ...", "Ana Souza here", "Ana Souza (Team Lead)": two capitalised words at the start of a
# sentence or after a comma, right before one of these words.
_NAME_BEFORE_SEP = re.compile(rf"({_NAME_TOKEN} {_NAME_TOKEN})(?= from | here| at | \(| in )")


def _numeric_matches(text: str, low: str) -> list[PiiMatch]:
    found: list[PiiMatch] = []
    for m in _RUN.finditer(text):
        start, end = m.start(), m.end()
        while end > start and text[end - 1] in _RUN_TRAIL:
            end -= 1
        if end <= start:
            continue
        prev = text[start - 1] if start else " "
        # IBAN: two capital letters glued before the check digits ("DE89 3704...", "GB29NWBK...").
        if start >= 2 and text[start - 2:start].isascii() and text[start - 2:start].isalpha():
            iban = _iban_at(text, start - 2)
            if iban:
                found.append(iban)
                continue
        if prev.isalnum() or prev in _BOUNDARY_BEFORE and not text[start] == "+":
            continue
        nxt = text[end] if end < len(text) else " "
        digits_only = text[start:end].replace(" ", "")
        # House number first: "1600 Pennsylvania Avenue", "221B Baker Street", "12 rue de la Paix".
        if len(digits_only) <= 6 and digits_only.isdigit():
            addr = (_US_ADDRESS_AT.match(text, start) or _US_ADDRESS_LOWER_AT.match(text, start)
                    or _ROMANCE_BEFORE_AT.match(text, start))
            if addr:
                value = addr.group().rstrip(".,")
                found.append(PiiMatch("address", start, start + len(value), value))
                continue
            # Street name first: "Hauptstraße 5", "Calle Mayor 10".
            if start >= 4 and text[start - 1] == " ":
                addr = _street_before(text, low, start)
                if addr:
                    found.append(addr)
            continue  # six digits or fewer and no dot: not a phone, card, SSN or IP
        if nxt.isalpha() or nxt in "@$€£%" or (nxt in ".," and end + 1 < len(text) and text[end + 1].isdigit()):
            if not (nxt == "-" or nxt.isspace()):
                continue
        run = text[start:end]
        if run.count(".") == 3 and _IPV4_FULL.fullmatch(run):
            if not (_VERSION_CUE.search(text, max(0, start - 14), start) or text.startswith("/", end)):
                found.append(PiiMatch("ip", start, end, run))
            continue
        kind = _classify_number(text, start, end)
        if kind:
            if kind == "phone":
                end = _extend_phone(text, end)
            found.append(PiiMatch(kind, start, end, text[start:end]))
    return found


def _iban_at(text: str, pos: int) -> PiiMatch | None:
    m = _IBAN.match(text, pos)
    if m is None or (pos and text[pos - 1].isalnum()):
        return None
    length = _IBAN_LENGTHS.get(m.group(1).upper())
    if length is None:
        return None
    count, end = 0, pos
    for i in range(pos, m.end()):
        if text[i] != " ":
            count += 1
            if count == length:
                end = i + 1
                break
    if count != length or (end < len(text) and text[end].isalnum()):
        return None
    candidate = text[pos:end]
    return PiiMatch("iban", pos, end, candidate) if _iban_valid(candidate.replace(" ", "").upper()) else None


def _street_before(text: str, low: str, start: int) -> PiiMatch | None:
    word_start = text.rfind(" ", 0, start - 1) + 1
    word = low[word_start:start - 1]
    window = max(0, start - 45)
    if word.endswith(_GERMANIC_ENDINGS):
        m = _GERMANIC.search(text, window)
        while m and m.start() < start:
            if m.start() <= word_start and m.end() > start:
                value = m.group().rstrip(".,")
                return PiiMatch("address", m.start(), m.start() + len(value), value)
            m = _GERMANIC.search(text, m.start() + 1)
    if _ROMANCE_SCAN.search(low, window, start):  # the street word opens the match, before the number
        m = _ROMANCE_AFTER.search(text, window)
        while m and m.start() < start:
            if m.end() > start:
                value = m.group().rstrip(".,")
                return PiiMatch("address", m.start(), m.start() + len(value), value)
            m = _ROMANCE_AFTER.search(text, m.start() + 1)
    return None


def _name_matches(text: str, low: str) -> list[PiiMatch]:
    """Names after a cue, in signatures, and two capitalised words before "from", "here", "at", "(" or "in".

    Every one starts at a capitalised word, so the scan visits those (a fast character-class search)
    and looks back from each for a cue, instead of searching the whole text for every cue word.
    `_name_after` then decides exactly as it would for a cue found by a forward scan.
    """
    found: list[PiiMatch] = []
    reverse = None
    for m in _CAPITAL.finditer(text):
        p = q = m.start()
        # Sentence start or after ", ": "Ana Souza from Acme".
        if p == 0 or (p >= 2 and (text[p - 2:p] == ", " or text[p - 1] == " " and text[p - 2] in "\n.!?")):
            pair = _NAME_BEFORE_SEP.match(text, p)
            if pair and _name_ok(pair.group(1)):
                found.append(PiiMatch("name", p, pair.end(1), pair.group(1)))
        # Walk back over the gap a cue may leave before the name: [,.!:]?[ \t]*\n?[ \t]*
        while q and text[q - 1] in " \t":
            q -= 1
        if q and text[q - 1] == "\n":
            q -= 1
            while q and text[q - 1] in " \t":
                q -= 1
        if q and text[q - 1] in ",.!:":
            q -= 1
        for after in range(q, p):  # a cue is followed by a gap character, never by a letter
            if not after or low[after - 1] not in _CUE_ENDS:
                continue
            if reverse is None:
                reverse, size = low[::-1], len(low)
            cue = _REVERSED_CUES.match(reverse, size - after)
            if cue is None:
                continue
            i = after - (cue.end() - cue.start())
            if i == 0 or not low[i - 1].isalnum():
                match = _name_after(text, cue.group()[::-1], after)
                if match:
                    found.append(match)
    if "\n" in text:
        found += _find_signatures(text)
    return found


def _name_after(text: str, cue: str, pos: int) -> PiiMatch | None:
    if cue in _TITLES:
        m = _NAME_AFTER_TITLE.match(text, pos)
        if m and _name_ok(m.group(1)):
            return PiiMatch("name", m.start(1), m.end(1), m.group(1))
        return None
    m = _NAME_AFTER.match(text, pos)
    if m is None:
        return None
    name, start, end = m.group(2), m.start(2), m.end(2)
    # A first name alone is a name only after a strong cue; "I'm Canadian" and "this is Ridiculous" are not.
    if " " not in name and cue in ("i am", "i'm", "this is", "it's"):
        return None
    # After a valediction the name ends the line ("Thanks, Maria"), unlike "thanks Call me on ...".
    if cue in _VALEDICTIONS and not _SIGNATURE_END.match(text, end):
        return None
    if not _name_ok(name):
        return None
    return PiiMatch("name", start, end, name)


def _find_signatures(text: str) -> list[PiiMatch]:
    """A name alone on the last line, under a line that ends with a valediction ("Best regards,\\nAna Souza")."""
    # `_LINE_NAME` ends with `$` (end of text), so only the last line can match: try it there alone
    # instead of at every position.
    end = len(text) - 1 if text.endswith("\n") else len(text)
    m = _LINE_NAME.match(text, max(0, text.rfind("\n", 0, end)))
    if m is None:
        return []
    line_start = text.rfind("\n", 0, max(0, m.start(1) - 1))
    previous = text[line_start + 1: text.rfind("\n", 0, m.start(1))]
    if _VALEDICTION.search(previous) and _name_ok(m.group(1)):
        return [PiiMatch("name", m.start(1), m.end(1), m.group(1))]
    return []


def find_pii(text: str) -> list[PiiMatch]:
    """Every piece of PII in `text`, sorted by position, overlaps resolved (checksum-backed types win)."""
    if not text:
        return []
    low = text.lower()
    candidates: list[PiiMatch] = []
    if "@" in text:
        candidates += [PiiMatch("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    candidates += _numeric_matches(text, low)
    if "::" in text or text.count(":") >= 7:
        candidates += [m for m in _find_ips(text) if ":" in m.text]
    candidates += _name_matches(text, low)
    return _resolve(candidates)


def _resolve(candidates: list[PiiMatch]) -> list[PiiMatch]:
    """Keep non-overlapping matches: stronger type first, then the longer span."""
    if len(candidates) < 2:
        return candidates
    ranked = sorted(candidates, key=lambda m: (_PRIORITY[m.type], -(m.end - m.start), m.start))
    kept: list[PiiMatch] = []
    for match in ranked:
        if all(match.end <= k.start or match.start >= k.end for k in kept):
            kept.append(match)
    return sorted(kept, key=lambda m: m.start)


def redact(text: str) -> tuple[str, list[PiiMatch]]:
    """`text` with each PII match replaced by its typed placeholder ([EMAIL], [PHONE], ...), and the matches."""
    matches = find_pii(text)
    if not matches:
        return text, matches
    parts, pos = [], 0
    for m in matches:
        parts.append(text[pos:m.start])
        parts.append(PLACEHOLDERS[m.type])
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts), matches


def evaluate_pii(path: str | Path) -> dict:
    """Per-type precision, recall, F1 and support of `find_pii` on a labeled JSONL set.

    Each line is `{"text": ..., "spans": [{"type", "start", "end"}]}`. A prediction is a true positive
    when its type matches a gold span of that type and the two overlap by at least half of the longer
    one (so "Mr. Patel" vs "Patel" counts, a phone found without its extension does too).
    Returns `{type: {precision, recall, f1, support, tp, fp, fn}, "micro": {...}, "snippets": n}`.
    """
    path = Path(path)
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in PII_TYPES}
    snippets = 0
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text, gold = item["text"], [(s["type"], s["start"], s["end"]) for s in item["spans"]]
            except (ValueError, KeyError, TypeError) as err:
                raise DataError(f"{path}:{lineno}: not a labeled PII snippet ({err.__class__.__name__}: {err})") from None
            snippets += 1
            predicted = [(m.type, m.start, m.end) for m in find_pii(text)]
            matched_gold = set()
            for p_type, p_start, p_end in predicted:
                hit = None
                for gi, (g_type, g_start, g_end) in enumerate(gold):
                    overlap = min(p_end, g_end) - max(p_start, g_start)
                    if gi not in matched_gold and g_type == p_type and overlap * 2 >= max(p_end - p_start, g_end - g_start):
                        hit = gi
                        break
                if hit is None:
                    counts[p_type]["fp"] += 1
                else:
                    matched_gold.add(hit)
                    counts[p_type]["tp"] += 1
            for gi, (g_type, _, _) in enumerate(gold):
                if gi not in matched_gold:
                    counts[g_type]["fn"] += 1
    result: dict = {}
    for kind, c in list(counts.items()) + [("micro", {k: sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn")})]:
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[kind] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                        "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}
    result["snippets"] = snippets
    return result
