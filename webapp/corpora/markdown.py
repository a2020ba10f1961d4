"""A small, safe Markdown subset for reading uploaded .md documents on their page.

Safety first: the whole text is HTML-escaped before any markup is added, so a document can never
bring its own tags, attributes or scripts; links keep only http(s), mailto, relative and #anchor
targets (anything else, `javascript:` included, stays plain text); images become links (a page
never loads what a document points at). Supported: ATX headings, paragraphs, emphasis (** and *),
inline code, fenced code blocks, bullet and numbered lists, block quotes, horizontal rules and pipe
tables. Anything else reads as text, which is what it is.
"""

from __future__ import annotations

import html
import re

from django.utils.safestring import SafeString, mark_safe

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^(```|~~~)")
_BULLET = re.compile(r"^[ \t]*[-*+][ \t]+(.*)$")
_NUMBERED = re.compile(r"^[ \t]*\d{1,9}[.)][ \t]+(.*)$")
_QUOTE = re.compile(r"^[ \t]*&gt;[ \t]?(.*)$")  # matched on escaped text
_RULE = re.compile(r"^[ \t]*([-*_])([ \t]*\1){2,}[ \t]*$")
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EMPHASIS = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_SAFE_TARGET = re.compile(r"^(https?://|mailto:|/|#|\./|\.\./)|^[\w][\w./-]*$", re.IGNORECASE)


def _link(text: str, target: str) -> str:
    if not _SAFE_TARGET.match(target):
        return text
    return f'<a href="{target}" rel="nofollow noopener noreferrer">{text}</a>'


def _inline(escaped: str) -> str:
    """Inline markup on already-escaped text; code spans are set aside first (no markup inside)."""
    spans: list[str] = []

    def keep(match: re.Match) -> str:
        spans.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE_SPAN.sub(keep, escaped)
    text = _IMAGE.sub(lambda m: _link(m.group(1) or m.group(2), m.group(2)), text)
    text = _LINK.sub(lambda m: _link(m.group(1), m.group(2)), text)
    text = _STRONG.sub(r"<strong>\1</strong>", text)
    text = _EMPHASIS.sub(r"<em>\1</em>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)


def _cells(row: str) -> list[str]:
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|"):
        row = row[:-1]
    return [cell.strip() for cell in row.split("|")]


def render_markdown(text: str) -> SafeString:
    """`text` as HTML (escaped first; see the module's docstring)."""
    lines = html.escape(text.replace("\x00", ""), quote=True).splitlines()
    out: list[str] = []
    paragraph: list[str] = []
    i = 0

    def flush() -> None:
        if paragraph:
            out.append("<p>" + _inline(" ".join(line.strip() for line in paragraph)) + "</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        if _FENCE.match(line):
            flush()
            fence = _FENCE.match(line).group(1)
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(fence):
                body.append(lines[i])
                i += 1
            out.append("<pre><code>" + "\n".join(body) + "</code></pre>")
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        if _RULE.match(line) and not paragraph:
            out.append("<hr>")
            i += 1
            continue
        if _TABLE_ROW.match(line) and i + 1 < len(lines) and _TABLE_SEPARATOR.match(lines[i + 1]):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            rows = []
            i += 2
            while i < len(lines) and _TABLE_ROW.match(lines[i]):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append(f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
            continue
        for pattern, tag in ((_BULLET, "ul"), (_NUMBERED, "ol")):
            if pattern.match(line):
                flush()
                items = []
                while i < len(lines) and pattern.match(lines[i]):
                    items.append("<li>" + _inline(pattern.match(lines[i]).group(1)) + "</li>")
                    i += 1
                out.append(f"<{tag}>{''.join(items)}</{tag}>")
                break
        else:
            if _QUOTE.match(line):
                flush()
                quoted = []
                while i < len(lines) and _QUOTE.match(lines[i]):
                    quoted.append(_QUOTE.match(lines[i]).group(1))
                    i += 1
                out.append("<blockquote><p>" + _inline(" ".join(quoted)) + "</p></blockquote>")
                continue
            paragraph.append(line)
            i += 1
    flush()
    return mark_safe("\n".join(out))  # noqa: S308 - built from escaped text only (see above)


def is_markdown(filename: str) -> bool:
    return filename.lower().endswith((".md", ".markdown"))
