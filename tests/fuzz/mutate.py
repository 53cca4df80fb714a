"""Hypothesis strategies that break valid inputs in the ways real files break.

Byte level: flips, interesting bytes, truncation, deletion, insertion, repeated slices (huge
fields, deep nesting), splices of two seeds and format tokens (``endobj``, ``<!DOCTYPE``, ``"``).
Value level: JSON values with wrong types, deep nesting, NaN and huge numbers; table cells with
odd dates, amounts, quotes, control characters and very long text; wrong text encodings.
Fully random bytes are always part of the mix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

MAX_SIZE = 256 * 1024
INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\r",
    b"\n",
    b'"',
    b"'",
    b"<",
    b">",
    b"&",
    b"%",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b";",
    b",",
    b"\t",
    b"\xc3",
    b"\xfe\xff",
)
TOKENS = {
    "pdf": (
        b"obj",
        b"endobj",
        b"stream",
        b"endstream",
        b"/Length 999999",
        b"xref",
        b"trailer",
        b"startxref",
        b"%%EOF",
        b"/Root",
        b"/Pages",
        b"/Kids [1 0 R]",
        b"/Count 99999999",
        b"/Filter /FlateDecode",
        b"/Encrypt",
        b"<<",
        b">>",
        b"(",
        b")",
        b"0 0 R",
    ),
    "xml": (
        b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
        b"<",
        b">",
        b"</",
        b"/>",
        b"&amp;",
        b"&#0;",
        b"<![CDATA[",
        b"]]>",
        b'="',
        b"xmlns:w=",
        b"<w:p>",
        b"<w:t>",
        b"<event>",
        b"<trace>",
        b'<date key="time:timestamp" value="0001-01-01T00:00:00+14:00"/>',
        b'<float key="x" value="nan"/>',
        b'<int key="n" value="99999999999999999999"/>',
        b"<log>",
        b"</log>",
    ),
    "mail": (
        b"\n\n",
        b"\r\n",
        b"Content-Type: multipart/mixed; boundary=X\n",
        b"--X\n",
        b"--X--\n",
        b"Content-Transfer-Encoding: base64\n",
        b"=?utf-8?b?",
        b"?=",
        b"charset=unknown-8bit",
        b"Content-Type: message/rfc822\n\n",
        b'filename="../../etc/passwd"',
        b"Content-Disposition: attachment\n",
    ),
    "csv": (
        b'"',
        b'""',
        b";",
        b",",
        b"\t",
        b"\r\n",
        b"\n",
        b"\x00",
        b"\xef\xbb\xbf",
        b"31.02.2024",
        b"0001-01-01T00:00:00+01:00",
        b"9999-12-31T23:59:59-14:00",
        b"1e309",
        b"-0",
        b"NaN",
        b"1.471,60",
        b"(12,00)",
        b"=HYPERLINK()",
    ),
    "json": (
        b"{",
        b"}",
        b"[",
        b"]",
        b'"',
        b":",
        b",",
        b"null",
        b"NaN",
        b"Infinity",
        b"1e999",
        b'"\\ud800"',
        b"\\u0000",
        b"[[[[[[[[",
        b"true",
    ),
    "zip": (
        b"PK\x03\x04",
        b"PK\x01\x02",
        b"PK\x05\x06",
        b"\x00\x00\x00\x00",
        b"\xff\xff\xff\xff",
        b"word/document.xml",
        b"[Content_Types].xml",
    ),
    "image": (
        b"IHDR",
        b"IDAT",
        b"IEND",
        b"\xff\xd8",
        b"\xff\xc0",
        b"\xff\xd9",
        b"II*\x00",
        b"\xff\xff\xff\x7f",
    ),
}
ENCODINGS = (
    "utf-8",
    "utf-8-sig",
    "cp1252",
    "latin-1",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "koi8-r",
)


@st.composite
def _mutation(
    draw: st.DrawFn, data: bytes, tokens: Sequence[bytes], others: Sequence[bytes]
) -> bytes:
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        size = len(buffer)
        op = draw(
            st.sampled_from(
                ("flip", "byte", "truncate", "delete", "insert", "repeat", "token", "splice")
            )
        )
        at = draw(st.integers(0, size))
        if op == "flip" and size:
            at = min(at, size - 1)
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            buffer[at:at] = draw(st.sampled_from(INTERESTING))
        elif op == "truncate":
            del buffer[at:]
        elif op == "delete":
            del buffer[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "repeat" and size:
            end = min(size, at + draw(st.integers(1, 32)))
            times = draw(st.sampled_from((2, 16, 256, 4096)))
            piece = bytes(buffer[at:end]) * times
            buffer[at:at] = piece[: max(0, MAX_SIZE - len(buffer))]
        elif op == "token" and tokens:
            buffer[at:at] = draw(st.sampled_from(tokens))
        elif op == "splice" and others:
            other = draw(st.sampled_from(others))
            cut = draw(st.integers(0, len(other)))
            buffer[at:] = other[cut:]
    return bytes(buffer[:MAX_SIZE])


def mutated(
    seeds: Sequence[bytes], kind: str = "", random_size: int = 4096
) -> st.SearchStrategy[bytes]:
    """A seed unchanged, a mutated seed, or random bytes (about 1 : 8 : 1)."""
    tokens = TOKENS.get(kind, ())
    seed = st.sampled_from(list(seeds))
    return st.one_of(
        seed,
        seed.flatmap(lambda s: _mutation(s, tokens, seeds)),
        seed.flatmap(lambda s: _mutation(s, tokens, seeds)),
        seed.flatmap(lambda s: _mutation(s, tokens, seeds)),
        seed.flatmap(lambda s: _mutation(s, tokens, seeds)),
        st.binary(max_size=random_size),
    )


# -- JSON ----------------------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        (
            "",
            " ",
            "\x00",
            "2024-13-45",
            "0001-01-01T00:00:00+01:00",
            "https://x",
            "javascript:alert(1)",
            "x" * 5000,
            "deleted",
            "Meeting",
            "true",
        )
    ),
)
ANY_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _replace_somewhere(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one node (chosen by walking down) replaced by any JSON value."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value, key=str)))
        return {**value, key: draw(_replace_somewhere(value[key]))}
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        copy = list(value)
        copy[index] = draw(_replace_somewhere(value[index]))
        return copy
    if isinstance(value, dict) and draw(st.booleans()):
        return {**value, draw(st.text(max_size=12)): draw(ANY_JSON)}
    return draw(ANY_JSON)


def json_documents(seeds: Sequence[Any], raw: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    """JSON text: a seed with nodes of the wrong type, deep nesting, any JSON, or broken text."""
    seed = st.sampled_from(list(seeds))
    changed = seed.flatmap(lambda s: st.integers(1, 3).flatmap(lambda n: _replace_n(s, n)))
    as_bytes = changed.map(_dump)
    nesting = st.tuples(st.sampled_from(("[", '{"a":')), st.integers(1, 200_000)).map(
        lambda t: (t[0] * t[1]).encode()
    )
    encoded = st.tuples(changed, st.sampled_from(ENCODINGS)).map(
        lambda t: _dump(t[0]).decode("utf-8").encode(t[1], errors="replace")
    )
    return st.one_of(
        as_bytes,
        as_bytes,
        as_bytes,
        ANY_JSON.map(_dump),
        nesting,
        encoded,
        mutated([_dump(s) for s in seeds] + list(raw), "json"),
    )


def _replace_n(value: Any, n: int) -> st.SearchStrategy[Any]:
    strategy: st.SearchStrategy[Any] = st.just(value)
    for _ in range(n):
        strategy = strategy.flatmap(_replace_somewhere)
    return strategy


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


# -- tables --------------------------------------------------------------------------------------

ODD_CELLS = (
    "",
    " ",
    '"',
    "\x00",
    "\r",
    "\n",
    "€",
    "31.02.2024",
    "29.02.2023",
    "2024-02-30",
    "00.00.0000",
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31 23:59",
    "01.01.0001 00:30",
    "2024-03-01T25:00",
    "1.471,60 €",
    "1,471.60",
    "(12,00)",
    "12,50-",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "-0",
    "99999999999999999999999",
    "1.2.3,4,5",
    "0,001",
    "x" * 300,
    "ä" * 70_000,
    "=1+1",
    "erledigt",
    "offen",
    "archiviert",
    "OA",
    "Bürgeramt",
)


def cells() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(ODD_CELLS), st.text(max_size=30))


@st.composite
def tables(
    draw: st.DrawFn,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
) -> tuple[list[str], list[list[str]]]:
    """The seed table with some cells, headers or whole rows replaced or dropped."""
    head = list(header)
    if draw(st.booleans()):
        head = draw(st.permutations(head))
    if draw(st.integers(0, 4)) == 0:
        head[draw(st.integers(0, len(head) - 1))] = draw(cells())
    body = [list(r) for r in rows] + draw(
        st.lists(st.lists(cells(), max_size=len(head) + 2), max_size=3)
    )
    for row in body:
        for index in range(len(row)):
            if draw(st.integers(0, 9)) == 0:
                row[index] = draw(cells())
    return head, body


@st.composite
def csv_files(
    draw: st.DrawFn,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    xlsx: bool = False,
) -> bytes:
    """A table written as CSV (any delimiter and encoding) or XLSX, maybe mutated afterwards."""
    import csv
    import io

    head, body = draw(tables(header, rows))
    if xlsx and draw(st.integers(0, 4)) == 0:
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        from tests.fuzz.seeds import xlsx_bytes

        def legal(cell: str) -> str:
            return ILLEGAL_CHARACTERS_RE.sub("", cell)

        data = xlsx_bytes([legal(h) for h in head], [[legal(c) for c in r] for r in body])
        return draw(st.one_of(st.just(data), mutated([data], "zip")))
    out = io.StringIO()
    delimiter = draw(st.sampled_from((";", ",", "\t", "|")))
    quoting = draw(st.sampled_from(("minimal", "all", "raw")))
    if quoting == "raw":  # cells joined as they are: quotes and delimiters inside break rows
        out.write("\r\n".join(delimiter.join(row) for row in [head, *body]))
    else:
        style = csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL
        writer = csv.writer(out, delimiter=delimiter, quoting=style)
        writer.writerow(head)
        writer.writerows(body)
    encoding = draw(st.one_of(st.just("utf-8"), st.sampled_from(ENCODINGS)))
    data = out.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 4)) == 0:
        data = draw(_mutation(data, TOKENS["csv"], ()))
    return data


# -- XES ------------------------------------------------------------------------------------------

_XES_KEYS = ("concept:name", "time:timestamp", "org:resource", "org:group", "kosten", "")
_XES_TAGS = ("string", "date", "int", "float", "boolean", "id", "list", "container")


@st.composite
def xes_documents(draw: st.DrawFn) -> bytes:
    """XES logs built element by element: attributes of every type with odd values, events
    without name or time, traces without events, nested lists; sometimes broken afterwards."""
    from xml.sax.saxutils import quoteattr

    def attribute() -> str:
        tag = draw(st.sampled_from(_XES_TAGS))
        key = draw(st.one_of(st.sampled_from(_XES_KEYS), st.text(max_size=8)))
        value = draw(cells())
        value = "".join(c for c in value if c >= " " or c in "\t\n")
        return f"<{tag} key={quoteattr(key)} value={quoteattr(value)}/>"

    def event() -> str:
        attrs = [
            '<string key="concept:name" value="Eingang"/>',
            '<date key="time:timestamp" value="2024-03-01T09:00:00+01:00"/>',
        ]
        attrs = attrs[: draw(st.integers(0, 2))] + [
            attribute() for _ in range(draw(st.integers(0, 3)))
        ]
        return "<event>" + "".join(draw(st.permutations(attrs))) + "</event>"

    traces = []
    for number in range(draw(st.integers(0, 4))):
        body = f'<string key="concept:name" value="F{number}"/>' if draw(st.booleans()) else ""
        body += "".join(event() for _ in range(draw(st.integers(0, 4))))
        traces.append(f"<trace>{body}</trace>")
    text = (
        '<?xml version="1.0" encoding="UTF-8"?><log xes.version="1.0">' + "".join(traces) + "</log>"
    )
    data = text.encode("utf-8")
    if draw(st.integers(0, 4)) == 0:
        data = draw(_mutation(data, TOKENS["xml"], ()))
    return data
