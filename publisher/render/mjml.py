"""MJML: validate against an allow-list, compile with mjml-python, inline marked styles.

mjml-python (a Rust port of MJML) neither validates (an unknown element or attribute is
silently dropped, so a typo quietly loses content) nor applies `<mj-style inline="inline">`.
This module does both: `validate_mjml` rejects what MJML would not know, and the inline
styles are extracted before compiling and applied with css-inline afterwards.

It also writes some characters in attribute values as Rust escapes (`\\u{200c}` for a
zero-width non-joiner, a soft hyphen, a line separator, a combining mark...), so every
non-ASCII character is handed to it as a character reference, which it keeps as it is, and
css-inline's HTML serialiser turns back into the character. `&#37;` (a `%` that must not
spell a placeholder, see render.personalise) is the one reference that must stay one: it
crosses both as an unguessable stand-in.
"""

from __future__ import annotations

import re
import secrets
from html.parser import HTMLParser

import css_inline
from mjml import mjml2html

from publisher.errors import TemplateError

_PADDING = {"padding", "padding-top", "padding-bottom", "padding-left", "padding-right"}
_BORDER = {"border", "border-top", "border-bottom", "border-left", "border-right"}
_COMMON = {"css-class", "mj-class"}
_BOX = _PADDING | _COMMON | {"container-background-color"}
_FONT = {
    "color", "font-family", "font-size", "font-style", "font-weight", "line-height",
    "letter-spacing", "text-decoration", "text-transform", "align",
}  # fmt: skip
_BACKGROUND = {
    "background-color", "background-url", "background-repeat", "background-size",
    "background-position", "background-position-x", "background-position-y",
}  # fmt: skip
_LINK = {"href", "rel", "target", "title", "name"}

# Every MJML 4 element this project may use, with the attributes it accepts.
MJML_ELEMENTS: dict[str, set[str]] = {
    "mjml": {"lang", "dir", "owa"},
    "mj-head": set(),
    "mj-body": {"width", "background-color"} | _COMMON,
    "mj-title": set(),
    "mj-preview": set(),
    "mj-font": {"name", "href"},
    "mj-breakpoint": {"width"},
    "mj-style": {"inline"},
    "mj-attributes": set(),
    "mj-all": set(),  # any known attribute, checked separately
    "mj-class": {"name"},  # any known attribute, checked separately
    "mj-html-attributes": set(),
    "mj-selector": {"path"},
    "mj-html-attribute": {"name"},
    "mj-raw": {"position"},
    "mj-include": {"path", "type", "css-inline"},
    "mj-wrapper": _BACKGROUND
    | _BORDER
    | _BOX
    | {"border-radius", "full-width", "text-align", "gap", "direction"},
    "mj-section": _BACKGROUND
    | _BORDER
    | _BOX
    | {"border-radius", "full-width", "text-align", "direction"},
    "mj-group": {"width", "vertical-align", "background-color", "direction"} | _COMMON,
    "mj-column": _BORDER
    | _BOX
    | {
        "background-color",
        "inner-background-color",
        "border-radius",
        "inner-border",
        "inner-border-top",
        "inner-border-bottom",
        "inner-border-left",
        "inner-border-right",
        "inner-border-radius",
        "width",
        "vertical-align",
        "direction",
    },  # fmt: skip
    "mj-text": _FONT | _BOX | {"height"},
    "mj-button": _FONT
    | _BOX
    | _BORDER
    | _LINK
    | {
        "background-color",
        "border-radius",
        "height",
        "inner-padding",
        "text-align",
        "vertical-align",
        "width",
    },  # fmt: skip
    "mj-image": _BOX
    | _BORDER
    | _LINK
    | {
        "align",
        "alt",
        "border-radius",
        "fluid-on-mobile",
        "height",
        "sizes",
        "src",
        "srcset",
        "usemap",
        "width",
    },  # fmt: skip
    "mj-divider": _BOX | {"align", "border-color", "border-style", "border-width", "width"},
    "mj-spacer": _BOX | {"height"},
    "mj-table": _FONT
    | _BOX
    | {"border", "cellpadding", "cellspacing", "role", "table-layout", "width"},
    "mj-social": _FONT
    | _BOX
    | {
        "border-radius",
        "icon-size",
        "icon-height",
        "icon-padding",
        "inner-padding",
        "mode",
        "text-padding",
    },  # fmt: skip
    "mj-social-element": _FONT
    | _BOX
    | _LINK
    | {
        "alt",
        "background-color",
        "border-radius",
        "icon-size",
        "icon-height",
        "icon-padding",
        "icon-position",
        "sizes",
        "src",
        "srcset",
        "text-padding",
        "vertical-align",
    },  # fmt: skip
}
_KNOWN_ATTRIBUTES = set().union(*MJML_ELEMENTS.values())
# Elements whose content is HTML (or CSS), not MJML: other tags inside them are not checked.
_ENDING_TAGS = {"mj-text", "mj-button", "mj-table", "mj-raw", "mj-style", "mj-title",
                "mj-preview", "mj-social-element"}  # fmt: skip


class _MjmlScanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_attributes = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            return
        line = self.getpos()[0]
        if tag not in MJML_ELEMENTS:
            self.problems.append(f"line {line}: unknown MJML element <{tag}>")
            return
        if tag == "mj-attributes":
            self._in_attributes += 1
        # inside <mj-attributes>, <mj-all>/<mj-class> take any attribute MJML knows
        loose = tag in ("mj-all", "mj-class") and self._in_attributes
        allowed = _KNOWN_ATTRIBUTES if loose else MJML_ELEMENTS[tag]
        for name, _value in attrs:
            if name not in allowed:
                self.problems.append(f"line {line}: unknown attribute '{name}' on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mj-attributes":
            self._in_attributes = max(0, self._in_attributes - 1)


def mjml_problems(source: str) -> list[str]:
    """Unknown MJML elements and attributes in `source`, each with its line."""
    scanner = _MjmlScanner()
    scanner.feed(source)
    scanner.close()
    return scanner.problems


_INLINE_STYLE = re.compile(
    r"<mj-style\s+inline\s*=\s*\"inline\"\s*>(.*?)</mj-style>", re.DOTALL | re.IGNORECASE
)


_STYLE_BLOCK = re.compile(r"(<mj-style\b.*?</mj-style>)", re.DOTALL | re.IGNORECASE)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_PERCENT_REF = re.compile(r"&#(?:37|[xX]0*25);")
# Per process and never in any output: content cannot spell it.
_PERCENT_STAND_IN = f"pct{secrets.token_hex(12)}pct"


def _protect(source: str) -> str:
    """Non-ASCII characters as references and `&#37;` as its stand-in, outside <mj-style>
    (CSS knows no character references)."""
    parts = _STYLE_BLOCK.split(source)
    for index in range(0, len(parts), 2):  # odd indices are the style blocks
        part = _PERCENT_REF.sub(_PERCENT_STAND_IN, parts[index])
        parts[index] = _NON_ASCII.sub(lambda m: f"&#x{ord(m.group(0)):X};", part)
    return "".join(parts)


def compile_mjml(source: str, *, template: str) -> str:
    """Validate and compile MJML to HTML, then apply the `inline="inline"` styles.

    Raises TemplateError naming the template and the element on any MJML problem.
    """
    problems = mjml_problems(source)
    if problems:
        raise TemplateError(f"{template} (rendered MJML): " + "; ".join(problems))
    inline_css = "\n".join(match.group(1) for match in _INLINE_STYLE.finditer(source))
    source = _protect(_INLINE_STYLE.sub("", source))
    try:
        # fonts={}: no web font <link> to Google; the layout uses system fonts.
        html = mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise TemplateError(f"{template}: MJML does not compile: {exc}") from None
    # Always through css-inline: its serialiser turns the references back into characters.
    html = inline_styles(html, inline_css if inline_css.strip() else None)
    return html.replace(_PERCENT_STAND_IN, "&#37;")


def inline_styles(html: str, css: str | None) -> str:
    """Apply `css` as inline style attributes; keep MJML's own <style> blocks (media queries)
    and never fetch a remote stylesheet."""
    inliner = css_inline.CSSInliner(
        inline_style_tags=False,
        keep_style_tags=True,
        keep_link_tags=True,
        load_remote_stylesheets=False,
        extra_css=css,
    )
    return inliner.inline(html)
