"""KeyDecoder and key_events_for, driven by real evdev.InputEvent objects through real libxkbcommon keymaps."""

import string

import pytest
from evdev import InputEvent, ecodes as e
from hypothesis import given, settings, strategies as st

from daemon.errors import KeymapError, TagdError
from daemon.keys import KeyDecoder, key_events_for
from daemon.scan import DROPPED, KeyStroke

TOP_ROW = [e.KEY_1, e.KEY_2, e.KEY_3, e.KEY_4, e.KEY_5, e.KEY_6, e.KEY_7, e.KEY_8, e.KEY_9, e.KEY_0]


def event(type_, code, value, at=0.0):
    sec, usec = divmod(round(at * 1_000_000), 1_000_000)
    return InputEvent(sec, usec, type_, code, value)


def press(decoder, code, at=0.0):
    return decoder.feed(event(e.EV_KEY, code, 1, at))


def release(decoder, code):
    return decoder.feed(event(e.EV_KEY, code, 0))


def tap(decoder, code):
    """Press and release one key; the stroke the press produced."""
    stroke = press(decoder, code)
    assert release(decoder, code) is None
    return stroke


def typed(decoder, *codes, held=()):
    """Tap each key with the `held` modifier keys down around all of them; the text the taps produced."""
    for modifier in held:
        press(decoder, modifier)
    text = "".join(tap(decoder, code).text for code in codes)
    for modifier in held:
        release(decoder, modifier)
    return text


def decoded(decoder, events):
    """Everything the decoder gave back for a stream, Nones dropped."""
    return [out for out in map(decoder.feed, events) if out is not None]


def text_of(decoder, events):
    return "".join(out.text for out in decoded(decoder, events))


# --- us ---------------------------------------------------------------------------------------------


def test_a_key_press_gives_its_text_keysym_and_the_events_own_timestamp():
    assert press(KeyDecoder("us"), e.KEY_A, at=1234.5678) == KeyStroke("a", "a", 1234.5678)


def test_release_gives_nothing():
    decoder = KeyDecoder("us")
    press(decoder, e.KEY_A)
    assert release(decoder, e.KEY_A) is None


def test_us_letters_and_digits():
    assert typed(KeyDecoder("us"), e.KEY_H, e.KEY_E, e.KEY_Y, *TOP_ROW) == "hey1234567890"


def test_us_shift_gives_capitals_and_symbols():
    decoder = KeyDecoder("us")
    assert typed(decoder, e.KEY_A, *TOP_ROW, e.KEY_APOSTROPHE, held=[e.KEY_LEFTSHIFT]) == 'A!@#$%^&*()"'
    assert typed(decoder, e.KEY_A, e.KEY_2, held=[e.KEY_RIGHTSHIFT]) == "A@"
    assert typed(decoder, e.KEY_A) == "a"  # Shift released: back to lower case


def test_modifier_press_types_nothing_but_names_its_keysym():
    assert press(KeyDecoder("us"), e.KEY_LEFTSHIFT) == KeyStroke("", "Shift_L", 0.0)


def test_caps_lock_toggles_on_press_and_release_and_shift_inverts_it():
    decoder = KeyDecoder("us")
    assert tap(decoder, e.KEY_CAPSLOCK) == KeyStroke("", "Caps_Lock", 0.0)
    assert typed(decoder, e.KEY_A, e.KEY_1) == "A1"  # Caps Lock shifts letters only
    assert typed(decoder, e.KEY_A, e.KEY_1, held=[e.KEY_LEFTSHIFT]) == "a!"
    assert tap(decoder, e.KEY_A).keysym == "A"
    tap(decoder, e.KEY_CAPSLOCK)
    assert typed(decoder, e.KEY_A) == "a"


def test_num_lock_switches_the_keypad_between_digits_and_navigation():
    decoder = KeyDecoder("us")
    assert tap(decoder, e.KEY_KP1) == KeyStroke("", "KP_End", 0.0)
    tap(decoder, e.KEY_NUMLOCK)
    assert tap(decoder, e.KEY_KP1) == KeyStroke("1", "KP_1", 0.0)
    assert typed(decoder, e.KEY_KP0, e.KEY_KP5, e.KEY_KP9, e.KEY_KPDOT) == "059."
    tap(decoder, e.KEY_NUMLOCK)
    assert typed(decoder, e.KEY_KP5, e.KEY_KP9) == ""


def test_enter_keys_and_tab_give_their_keysyms_and_control_characters():
    decoder = KeyDecoder("us")
    assert tap(decoder, e.KEY_ENTER) == KeyStroke("\r", "Return", 0.0)
    assert tap(decoder, e.KEY_KPENTER) == KeyStroke("\r", "KP_Enter", 0.0)
    assert tap(decoder, e.KEY_TAB) == KeyStroke("\t", "Tab", 0.0)
    assert tap(decoder, e.KEY_F1) == KeyStroke("", "F1", 0.0)


def test_autorepeat_types_nothing_and_leaves_the_state_alone():
    decoder = KeyDecoder("us")
    press(decoder, e.KEY_A)
    assert decoder.feed(event(e.EV_KEY, e.KEY_A, 2)) is None
    release(decoder, e.KEY_A)
    press(decoder, e.KEY_LEFTSHIFT)
    assert decoder.feed(event(e.EV_KEY, e.KEY_LEFTSHIFT, 2)) is None
    assert typed(decoder, e.KEY_B) == "B"  # the repeat did not count as a second press or a release
    release(decoder, e.KEY_LEFTSHIFT)
    assert typed(decoder, e.KEY_B) == "b"


@pytest.mark.parametrize(
    "type_, code, value",
    [
        (e.EV_SYN, e.SYN_REPORT, 0),
        (e.EV_MSC, e.MSC_SCAN, 0x70004),
        (e.EV_LED, e.LED_CAPSL, 1),
        (e.EV_REL, e.REL_X, 3),
    ],
)
def test_events_other_than_keys_and_syn_dropped_give_nothing(type_, code, value):
    decoder = KeyDecoder("us")
    assert decoder.feed(event(type_, code, value)) is None
    assert typed(decoder, e.KEY_A) == "a"  # and change nothing: an LED event is not Caps Lock


def test_syn_dropped_forgets_a_held_shift_and_reports_dropped():
    decoder = KeyDecoder("us")
    press(decoder, e.KEY_LEFTSHIFT)
    assert typed(decoder, e.KEY_A) == "A"
    assert decoder.feed(event(e.EV_SYN, e.SYN_DROPPED, 0)) is DROPPED
    assert typed(decoder, e.KEY_A) == "a"
    assert release(decoder, e.KEY_LEFTSHIFT) is None  # the release of the forgotten press is harmless
    assert typed(decoder, e.KEY_A) == "a"


def test_syn_dropped_forgets_locks_too():
    decoder = KeyDecoder("us")
    tap(decoder, e.KEY_CAPSLOCK)
    tap(decoder, e.KEY_NUMLOCK)
    decoder.feed(event(e.EV_SYN, e.SYN_DROPPED, 0))
    assert typed(decoder, e.KEY_A, e.KEY_KP1) == "a"


def test_reset_drops_held_modifiers_and_locks():
    decoder = KeyDecoder("us")
    tap(decoder, e.KEY_CAPSLOCK)
    press(decoder, e.KEY_LEFTSHIFT)
    decoder.reset()
    assert typed(decoder, e.KEY_A, e.KEY_2) == "a2"


def test_two_decoders_never_share_modifier_state():
    front, back = KeyDecoder("us"), KeyDecoder("us")
    press(front, e.KEY_LEFTSHIFT)
    tap(back, e.KEY_CAPSLOCK)
    assert typed(back, e.KEY_A, e.KEY_2) == "A2"
    assert typed(front, e.KEY_A, e.KEY_2) == "A@"
    front.feed(event(e.EV_SYN, e.SYN_DROPPED, 0))
    assert typed(back, e.KEY_A) == "A"  # one device's SYN_DROPPED leaves the other's Caps Lock on


def test_a_key_the_keymap_does_not_have_types_nothing():
    assert press(KeyDecoder("us"), 0x2FE) == KeyStroke("", "NoSymbol", 0.0)


@pytest.mark.parametrize("code", [-1, e.KEY_MAX + 1, 0x10000])
def test_key_codes_the_kernel_cannot_send_are_ignored(code):
    decoder = KeyDecoder("us")
    assert decoder.feed(event(e.EV_KEY, code, 1)) is None
    assert typed(decoder, e.KEY_A) == "a"


# --- other layouts ----------------------------------------------------------------------------------


def test_gb_shift_3_is_pound_and_shift_2_is_double_quote_where_us_has_hash_and_at():
    assert typed(KeyDecoder("gb"), e.KEY_3, e.KEY_2, held=[e.KEY_LEFTSHIFT]) == '£"'
    assert typed(KeyDecoder("us"), e.KEY_3, e.KEY_2, held=[e.KEY_LEFTSHIFT]) == "#@"


def test_gb_at_sign_is_shift_apostrophe():
    assert typed(KeyDecoder("gb"), e.KEY_APOSTROPHE, held=[e.KEY_LEFTSHIFT]) == "@"


def test_de_swaps_y_and_z():
    assert typed(KeyDecoder("de"), e.KEY_Y, e.KEY_Z) == "zy"


def test_de_altgr_symbols():
    decoder = KeyDecoder("de")
    assert press(decoder, e.KEY_RIGHTALT) == KeyStroke("", "ISO_Level3_Shift", 0.0)
    assert typed(decoder, e.KEY_Q, e.KEY_E, e.KEY_8, e.KEY_MINUS) == "@€[\\"
    release(decoder, e.KEY_RIGHTALT)
    assert typed(decoder, e.KEY_Q) == "q"


def test_de_shifted_digits():
    assert typed(KeyDecoder("de"), e.KEY_2, e.KEY_3, e.KEY_7, held=[e.KEY_LEFTSHIFT]) == '"§/'


def test_de_dead_key_types_nothing_and_does_not_compose():
    decoder = KeyDecoder("de")
    assert tap(decoder, e.KEY_GRAVE) == KeyStroke("", "dead_circumflex", 0.0)
    assert typed(decoder, e.KEY_A) == "a"  # not 'â': compose is deliberately not done


def test_fr_top_row_needs_shift_for_digits():
    decoder = KeyDecoder("fr")
    assert typed(decoder, *TOP_ROW) == "&é\"'(-è_çà"
    assert typed(decoder, *TOP_ROW, held=[e.KEY_LEFTSHIFT]) == "1234567890"


def test_fr_is_azerty_and_altgr_0_is_at_sign():
    decoder = KeyDecoder("fr")
    assert typed(decoder, e.KEY_Q, e.KEY_W, e.KEY_SEMICOLON) == "azm"
    assert typed(decoder, e.KEY_0, e.KEY_E, held=[e.KEY_RIGHTALT]) == "@€"


def test_caps_lock_on_a_layout_with_accented_letters():
    decoder = KeyDecoder("fr")
    tap(decoder, e.KEY_CAPSLOCK)
    assert typed(decoder, e.KEY_Q, e.KEY_2) == "AÉ"


def test_keypad_with_num_lock_on_de():
    decoder = KeyDecoder("de")
    tap(decoder, e.KEY_NUMLOCK)
    assert typed(decoder, e.KEY_KP4, e.KEY_KP2, e.KEY_KPDOT) == "42,"  # the German keypad has a decimal comma
    assert tap(decoder, e.KEY_KPENTER).keysym == "KP_Enter"


def test_variant_and_options_are_honoured():
    assert typed(KeyDecoder("us", "dvorak"), e.KEY_S, e.KEY_D) == "oe"
    assert tap(KeyDecoder("us", options="caps:escape"), e.KEY_CAPSLOCK) == KeyStroke("\x1b", "Escape", 0.0)


# --- bad layouts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, named",
    [
        (("zz",), "'zz'"),
        (("de", "nope"), "variant 'nope'"),
        (("us", "", "caps:nonsense"), "options 'caps:nonsense'"),  # libxkbcommon only logs this one
        (("us,de",), "more than one layout"),
        (("us", "dvorak,"), "more than one layout"),
        (("",), "no layout"),
    ],
)
def test_a_layout_that_cannot_be_compiled_raises_keymap_error_naming_it(args, named):
    with pytest.raises(KeymapError, match="XKB layout") as raised:
        KeyDecoder(*args)
    assert named in str(raised.value)
    assert isinstance(raised.value, TagdError)


def test_keymap_error_says_why():
    with pytest.raises(KeymapError, match='symbols/zz'):
        KeyDecoder("zz")


# --- key_events_for ---------------------------------------------------------------------------------


def test_key_events_for_emits_press_and_release_reports_like_a_keyboard():
    events = key_events_for("aB", "us", start=10.0, gap_ms=4.0, terminator=None)
    assert [(ev.type, ev.code, ev.value, ev.timestamp()) for ev in events] == [
        (e.EV_KEY, e.KEY_A, 1, 10.0),
        (e.EV_SYN, e.SYN_REPORT, 0, 10.0),
        (e.EV_KEY, e.KEY_A, 0, 10.002),
        (e.EV_SYN, e.SYN_REPORT, 0, 10.002),
        (e.EV_KEY, e.KEY_LEFTSHIFT, 1, 10.004),
        (e.EV_KEY, e.KEY_B, 1, 10.004),
        (e.EV_SYN, e.SYN_REPORT, 0, 10.004),
        (e.EV_KEY, e.KEY_LEFTSHIFT, 0, 10.006),
        (e.EV_KEY, e.KEY_B, 0, 10.006),
        (e.EV_SYN, e.SYN_REPORT, 0, 10.006),
    ]
    assert all(isinstance(ev, InputEvent) for ev in events)


def test_key_events_for_spaces_key_presses_by_the_gap_and_ends_with_the_terminator():
    strokes = decoded(KeyDecoder("us"), key_events_for("A1", "us", start=100.0, gap_ms=5.0))
    texts = [(s.text, s.keysym) for s in strokes]
    assert texts == [("", "Shift_L"), ("A", "A"), ("1", "1"), ("\r", "Return")]
    assert [s.at for s in strokes[1:]] == pytest.approx([100.0, 100.005, 100.010])


@pytest.mark.parametrize("terminator, code", [("KP_Enter", e.KEY_KPENTER), ("Tab", e.KEY_TAB)])
def test_key_events_for_other_terminators(terminator, code):
    events = key_events_for("", "us", terminator=terminator)
    assert [(ev.code, ev.value) for ev in events if ev.type == e.EV_KEY] == [(code, 1), (code, 0)]


def test_key_events_for_uses_altgr_where_the_layout_needs_it():
    events = key_events_for("@", "de", terminator=None)
    assert [(ev.code, ev.value) for ev in events if ev.type == e.EV_KEY] == [
        (e.KEY_RIGHTALT, 1), (e.KEY_Q, 1), (e.KEY_RIGHTALT, 0), (e.KEY_Q, 0)
    ]


def test_key_events_for_prefers_the_main_block_and_shift_over_keypad_and_altgr():
    def keys(text, layout):
        return [ev.code for ev in key_events_for(text, layout, terminator=None) if ev.value == 1]

    assert keys("*", "us") == [e.KEY_LEFTSHIFT, e.KEY_8]  # not KP_Multiply
    assert keys("@", "gb") == [e.KEY_LEFTSHIFT, e.KEY_APOSTROPHE]  # not AltGr+q
    assert keys("1", "fr") == [e.KEY_LEFTSHIFT, e.KEY_1]  # not the keypad, which needs Num Lock


@pytest.mark.parametrize(
    "text, layout, named",
    [("ß", "us", "'ß'"), ("^", "de", "'^'"), ("\f", "us", "'\\x0c'")],
)
def test_key_events_for_a_character_the_layout_cannot_type_raises(text, layout, named):
    with pytest.raises(KeymapError, match=f"layout '{layout}'") as raised:
        key_events_for(f"ok{text}", layout)
    assert f"cannot type {named}" in str(raised.value)


def test_key_events_for_an_unknown_terminator_or_layout_raises():
    with pytest.raises(KeymapError, match="keysym 'Nope'"):
        key_events_for("1", "us", terminator="Nope")
    with pytest.raises(KeymapError, match="'zz'"):
        key_events_for("1", "zz")


@pytest.mark.parametrize("layout", ["us", "gb", "fr"])
def test_every_printable_ascii_character_round_trips(layout):
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    assert text_of(KeyDecoder(layout), key_events_for(printable, layout, terminator=None)) == printable


def test_key_events_for_honours_the_variant():
    events = key_events_for("oe", "us", "dvorak", terminator=None)
    assert [ev.code for ev in events if ev.value == 1 and ev.type == e.EV_KEY] == [e.KEY_S, e.KEY_D]
    assert text_of(KeyDecoder("us", "dvorak"), events) == "oe"


def test_layout_specific_characters_round_trip():
    for text, layout in [("£€", "gb"), ("äöüßÄÖÜ@€µ", "de"), ("éèçàù€£§µ", "fr")]:
        assert text_of(KeyDecoder(layout), key_events_for(text, layout, terminator=None)) == text


PRINTABLE_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
ALPHANUMERIC = st.text(st.sampled_from(string.ascii_letters + string.digits), max_size=40)


@settings(max_examples=60, deadline=None)
@given(text=PRINTABLE_ASCII)
def test_us_decoding_inverts_key_events_for(text):
    events = key_events_for(text, "us")
    assert text_of(KeyDecoder("us"), events) == text + "\r"
    assert {ev.code for ev in events if ev.type == e.EV_KEY} <= set(e.KEY)  # only keys Linux defines


@settings(max_examples=40, deadline=None)
@given(text=ALPHANUMERIC, layout=st.sampled_from(["gb", "de", "fr"]))
def test_alphanumeric_decoding_inverts_key_events_for_on_other_layouts(text, layout):
    assert text_of(KeyDecoder(layout), key_events_for(text, layout, terminator=None)) == text
