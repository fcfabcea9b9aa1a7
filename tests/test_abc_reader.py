"""The ABC reader of the training corpora reads every tune with its own unit note length.

ABC's default unit note length is an eighth for meters of 3/4 and above (a sixteenth below), and
an ``L:`` field belongs to the tune it is in. music21, reading a whole file as one opus, carried one
tune's ``L:1/4`` over to the tunes after it: half of the Nottingham jigs were read with every
eighth note as a quarter (two bars of music in each 6/8 bar). The expectations below are counted
from the ABC by hand.
"""

from __future__ import annotations

from hum2band.train.datasets import abc_tunes, read_abc_tunes

TWO_TUNES = """% a file header: a comment, then a field that belongs to every tune
Z:a test file

X: 1
T:Slow air
M:6/4
L:1/4
K:D
"D"D2 F A2 F|"A"E3 E3|

X: 2
T:A jig that states no unit length
M:6/8
K:D
"D"DFA dAF|"A"EAc e3|
"""


def test_a_file_is_split_into_tunes_each_with_the_file_header():
    tunes = abc_tunes(TWO_TUNES)
    assert len(tunes) == 2
    assert all(t.splitlines()[0] == "Z:a test file" for t in tunes)  # the comment line is left out
    assert "L:1/4" in tunes[0] and "\nL:" not in tunes[1]
    assert tunes[1].splitlines()[1] == "X: 2"


def test_a_file_without_tunes_has_none():
    assert abc_tunes("") == []
    assert abc_tunes("% nothing here\n") == ["% nothing here\n"]  # parsed (and refused) as one text


def test_a_tune_without_l_field_reads_eighths_after_a_tune_with_l_quarter(tmp_path):
    path = tmp_path / "two.abc"
    path.write_text(TWO_TUNES)
    air, jig = read_abc_tunes(path)
    # the air: 6/4 counts six quarter beats a bar; "D2 F A2 F" is 2+1+2+1 beats
    assert air.meter == (6, 4)
    assert [round(n.offset_beat - n.onset_beat, 3) for n in air.melody[:4]] == [2.0, 1.0, 2.0, 1.0]
    # the jig: eighth notes, a third of a dotted-quarter beat each; two bars are four beats
    assert jig.meter == (6, 8) and jig.beats_per_bar == 2
    lengths = [round(n.offset_beat - n.onset_beat, 3) for n in jig.melody]
    assert lengths[:6] == [0.333] * 6
    assert lengths[-1] == 1.0  # "e3": a dotted quarter
    assert jig.melody[-1].offset_beat == 4.0
    assert [n.midi for n in jig.melody[:3]] == [62, 66, 69]  # D F# A (key of D)
