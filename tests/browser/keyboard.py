"""Keyboard-only driving of a real page: Tab (or Shift+Tab) until an element has the focus,
checking on every stop that the focused element shows a visible focus indicator.

No mouse, no ``element.click()``: a journey written with these helpers proves that every step
can be done with the keyboard alone.
"""

from __future__ import annotations

from typing import Any

# The focused element, its accessible name as a person hears it (aria-label, its label, its
# text) and whether a focus indicator is drawn (an outline or a ring of box-shadow).
_FOCUSED = """() => {
  const a = document.activeElement;
  if (!a || a === document.body || a === document.documentElement) { return null; }
  if (a.tagName === "IFRAME") {  // the focus is inside the frame, which draws its own ring
    return {tag: "iframe", id: a.id, type: "", name: a.title || "", ring: true, settled: true};
  }
  const label = a.labels && a.labels.length ? a.labels[0].innerText : "";
  const raw = a.getAttribute("aria-label") || label || a.innerText || a.value || a.title || "";
  const style = getComputedStyle(a);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return {tag: a.tagName.toLowerCase(), id: a.id, type: a.type || "",
          name: raw.replace(/\\s+/g, " ").trim(), ring: outline || style.boxShadow !== "none",
          settled: a.matches(":focus") || a.matches(":focus-within")};
}"""


def focused(page) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    """The focused element of ``page`` (or of a frame): tag, id, type, name, ring.

    Waits while the focus is still moving (a date field hands it on between its parts a
    moment after the key press)."""
    for _ in range(40):
        info = page.evaluate(_FOCUSED)
        if info is None or info["settled"]:
            return info
        page.wait_for_timeout(25)
    return info


def tab_to(
    page,  # type: ignore[no-untyped-def]
    name: str,
    *,
    exact: bool = False,
    back: bool = False,
    limit: int = 80,
    keyboard=None,  # type: ignore[no-untyped-def]
) -> dict[str, Any]:
    """Press Tab (``back``: Shift+Tab) until the focused element's name contains ``name``
    (``exact``: equals it) or its id is ``#name``; every element passed must show its focus.

    ``page`` may be a frame (then pass the page's ``keyboard``)."""
    keys = keyboard or page.keyboard
    stops: list[str] = []
    for _ in range(limit):
        keys.press("Shift+Tab" if back else "Tab")
        info = focused(page)
        if info is None:
            stops.append("(Seite)")
            continue
        stops.append(info["name"][:40] or f"<{info['tag']}#{info['id']}>")
        assert info["ring"], f"Kein sichtbarer Fokus auf {info}"
        matched = info["name"] == name if exact else name in info["name"]
        if matched or (name.startswith("#") and info["id"] == name[1:]):
            return info
    raise AssertionError(f"Mit Tab nicht erreicht: {name!r}; Stationen: {stops}")


def press_on(page, name: str, key: str = "Enter", **kwargs: Any) -> None:  # type: ignore[no-untyped-def]
    """Tab to the element called ``name`` and press ``key`` on it (Enter or Space)."""
    tab_to(page, name, **kwargs)
    (kwargs.get("keyboard") or page.keyboard).press(key)


def login(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in by keyboard: the user name field has the focus, Tab, the password, Enter."""
    page.goto(base + "/login")
    assert focused(page)["id"] == "username"
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")
