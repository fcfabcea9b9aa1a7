"""MusicXML lead sheets: the melody notes and ``<harmony>`` chord symbols of a score."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .chords import ChordSymbol
from .key import Key, key_of_pitch_class
from .leadsheet import BeatNote

# ---- MusicXML (chord-melody, OpenEWLD) ------------------------------------------------------
_STEP_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


_KIND_QUALITY = {
    "major": "maj", "minor": "min", "augmented": "aug", "diminished": "dim", "dominant": "7",
    "major-seventh": "maj7", "minor-seventh": "min7", "diminished-seventh": "dim7",
    "augmented-seventh": "7", "half-diminished": "hdim7", "major-minor": "minmaj7",
    "major-sixth": "maj6", "minor-sixth": "min6", "dominant-ninth": "9", "major-ninth": "maj9",
    "minor-ninth": "min9", "dominant-11th": "7sus4", "major-11th": "maj7", "minor-11th": "min7",
    "dominant-13th": "7", "major-13th": "maj7", "minor-13th": "min7",
    "suspended-second": "sus2", "suspended-fourth": "sus4", "Neapolitan": "maj", "Italian": "7",
    "French": "7", "German": "7", "pedal": "maj", "power": "maj", "Tristan": "hdim7",
    "other": "maj", "": "maj",
}


def _text(el, path, default=None):
    x = el.find(path)
    return x.text.strip() if x is not None and x.text is not None else default


def _xml_root(path: Path) -> ET.Element:
    if path.suffix.lower() == ".mxl":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.startswith("META-INF")]
            try:
                cont = ET.fromstring(z.read("META-INF/container.xml"))
                rootfile = cont.find(".//rootfile").get("full-path")
            except (KeyError, AttributeError, ET.ParseError):
                rootfile = next(n for n in names if n.endswith((".xml", ".musicxml")))
            return ET.fromstring(z.read(rootfile))
    return ET.parse(path).getroot()


@dataclass
class MusicXMLScore:
    notes: list[BeatNote]       # in quarter notes here
    chords: list[tuple[float, ChordSymbol]]
    meter: tuple
    key: Key | None
    tempo_bpm_quarter: float | None
    pickup_q: float             # length of an incomplete first bar in quarter notes (0 if none)
    title: str


def read_musicxml(path: str | os.PathLike) -> MusicXMLScore:
    """Melody notes and ``<harmony>`` chord symbols of the first part that has notes.

    Times are quarter notes from the start. Only the first voice of staff 1 is read; chord
    notes keep their top note later; ties are merged; grace notes are dropped.
    """
    root = _xml_root(Path(path))
    if root.tag != "score-partwise":
        raise InputError(f"{path} is not a partwise MusicXML score")
    title = _text(root, "movement-title", "") or _text(root, "work/work-title", "") or ""
    meters, keys, tempo = [], [], None
    for part in root.findall("part"):
        if part.find(".//note/pitch") is None:
            continue
        notes: list[BeatNote] = []
        chords: list[tuple[float, ChordSymbol]] = []
        divisions, transpose = 1.0, 0
        t_measure = 0.0
        first_len = None
        voice0 = None
        for mi, measure in enumerate(part.findall("measure")):
            cur, max_cur = 0.0, 0.0
            for el in measure:
                tag = el.tag
                if tag == "attributes":
                    divisions = float(_text(el, "divisions", divisions))
                    if el.find("time/beats") is not None:
                        try:
                            meters.append((t_measure, (int(_text(el, "time/beats").split("+")[0]),
                                                       int(_text(el, "time/beat-type")))))
                        except ValueError:
                            pass
                    if el.find("key/fifths") is not None:
                        fifths = int(_text(el, "key/fifths"))
                        mode = (_text(el, "key/mode", "major") or "major").lower()
                        pc = (fifths * 7) % 12
                        if mode == "minor":
                            keys.append(key_of_pitch_class(pc + 9, "minor"))
                        else:
                            keys.append(key_of_pitch_class(pc, "major"))
                    if el.find("transpose") is not None:
                        transpose = int(float(_text(el, "transpose/chromatic", "0"))) + \
                            12 * int(float(_text(el, "transpose/octave-change", "0")))
                elif tag == "sound" or (tag == "direction" and el.find("sound") is not None):
                    snd = el if tag == "sound" else el.find("sound")
                    if snd.get("tempo") and tempo is None:
                        tempo = float(snd.get("tempo"))
                elif tag == "backup":
                    cur -= float(_text(el, "duration", "0")) / divisions
                elif tag == "forward":
                    cur += float(_text(el, "duration", "0")) / divisions
                    max_cur = max(max_cur, cur)
                elif tag == "harmony":
                    step = _text(el, "root/root-step")
                    if step is None:
                        continue
                    rpc = _STEP_PC[step.upper()] + int(float(_text(el, "root/root-alter", "0")))
                    kind = _text(el, "kind", "major") or "major"
                    off = float(_text(el, "offset", "0")) / divisions
                    if abs(off) < 0.5:  # a nudge of the printed symbol, not a later chord
                        off = 0.0
                    if kind == "none":
                        chords.append((t_measure + cur + off, ChordSymbol.no_chord()))
                        continue
                    bstep = _text(el, "bass/bass-step")
                    bpc = None if bstep is None else \
                        _STEP_PC[bstep.upper()] + int(float(_text(el, "bass/bass-alter", "0")))
                    chords.append((t_measure + cur + off,
                                   ChordSymbol.make(rpc, _KIND_QUALITY.get(kind, "maj"), bpc)))
                elif tag == "note":
                    if el.find("grace") is not None or el.find("cue") is not None:
                        continue
                    dur = float(_text(el, "duration", "0")) / divisions
                    is_chord = el.find("chord") is not None
                    voice = _text(el, "voice", "1")
                    staff = _text(el, "staff", "1")
                    if voice0 is None and el.find("pitch") is not None:
                        voice0 = voice
                    start = cur - dur if is_chord else cur
                    if not is_chord:
                        cur += dur
                        max_cur = max(max_cur, cur)
                    if el.find("rest") is not None or el.find("pitch") is None:
                        continue
                    if voice != voice0 or staff != "1":
                        continue
                    midi = (int(_text(el, "pitch/octave")) + 1) * 12 + _STEP_PC[_text(el, "pitch/step").upper()] \
                        + int(round(float(_text(el, "pitch/alter", "0")))) + transpose
                    onset = t_measure + start
                    if is_chord:
                        if notes and abs(notes[-1].onset_beat - onset) < 1e-6 and midi > notes[-1].midi:
                            notes[-1].midi = midi
                        continue
                    ties = {t.get("type") for t in el.findall("tie")}
                    if "stop" in ties and notes and notes[-1].midi == midi and \
                            abs(notes[-1].offset_beat - onset) < 1e-3:
                        notes[-1].offset_beat = onset + dur
                    else:
                        notes.append(BeatNote(onset, onset + dur, midi))
            if mi == 0:
                first_len = max_cur
            t_measure += max_cur
        if not notes:
            continue
        meter = meters[0][1] if meters else (4, 4)
        bar_q = meter[0] * 4.0 / meter[1]
        pickup = first_len if first_len is not None and 0 < first_len < bar_q - 1e-6 else 0.0
        return MusicXMLScore(notes, chords, meter, keys[0] if keys else None, tempo, pickup, title)
    raise InputError(f"{path} has no melody notes")
