"""Key scripts: parsing, one line per bad step, and playing against the source's clock and the training."""

from __future__ import annotations

import pytest

from pipeline.errors import UserError
from pipeline.ui.keyscript import KeyScript, Step, parse_keys


def test_parse_keys_reads_characters_names_times_and_waits():
    assert parse_keys("space@1.0, 2 ,t,wait-train,esc@0.5,[") == [
        Step(32, 1.0, "space@1.0"), Step(ord("2"), None, "2"), Step(ord("t"), None, "t"),
        Step(None, None, "wait-train"), Step(27, 0.5, "esc@0.5"), Step(ord("["), None, "["),
    ]


@pytest.mark.parametrize("script, step", [("space,spce", "step 2 'spce' is not a key"), ("a@x", "step 1 'a@x': the time"),
                                          ("t@-1", "step 1 't@-1': the time"), ("a,,b", "step 2 '' is not a key")])
def test_a_bad_step_is_one_line_naming_it(script, step):
    with pytest.raises(UserError) as e:
        parse_keys(script)
    assert str(e.value).startswith(f"--keys: {step}") and "\n" not in str(e.value)


def test_keys_follow_the_clock_one_per_frame_and_wait_for_training():
    script = KeyScript(parse_keys("space@1.0,u,space@4.0,t,wait-train,q@0.5"))
    pressed = []
    clock = [10.0 + 0.1 * k for k in range(60)]  # a source whose clock starts at 10 s, 10 frames a second
    training = lambda now: 14.15 <= now < 15.2  # noqa: E731 (a run from the frame after t until 15.2 s)
    for now in clock:
        key = script.key(now, training(now))
        if key >= 0:
            pressed.append((chr(key), round(now - 10.0, 1)))
    # space at 1 s, u the next frame, space at 4 s, t the next; then nothing until the training ends
    # at 5.2 s, and q half a second after that.
    assert pressed == [(" ", 1.0), ("u", 1.1), (" ", 4.0), ("t", 4.1), ("q", 5.7)]
    assert script.finished
