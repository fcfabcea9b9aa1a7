"""Mutation testing of the modules that decide the music (``make mutation``; not part of ``make test``).

mutmut (3.x) plants small bugs in one module at a time -- an operator flipped, a constant moved
by one, a string changed -- and runs the tests that reach the mutated function. A mutant the
tests let through ("survived") is a bug the suite would not have caught. The score is

    killed / (mutants - equivalent)

where an equivalent mutant changes no behaviour a caller can see (listed with its reason in
:data:`EQUIVALENT`, and in docs/mutation.md).

Each module is mutated in its own copy of the project under ``build/mutation/<module>/`` (the
working tree is never touched), with the test files that exercise it. Usage::

    .venv/bin/python tests/mutation.py                  # every module below
    .venv/bin/python tests/mutation.py chords tempo_map  # some of them
    .venv/bin/python tests/mutation.py --show chords    # the surviving mutants' diffs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "mutation"

#: Short name -> (module file, the test files that exercise it).
MODULES = {
    "chords": ("hum2band/music/chords.py", ["tests/test_chords.py", "tests/test_music_properties.py"]),
    "tempo_map": ("hum2band/music/tempo_map.py",
                  ["tests/test_tempo_map.py", "tests/test_music_properties.py"]),
    "harmony_grid": ("hum2band/compose/harmony/grid.py",
                     ["tests/test_harmony_grid.py", "tests/test_harmony_model.py"]),
    "parts_grid": ("hum2band/compose/parts/grid.py", ["tests/test_parts_grid.py"]),
    "keyfinding": ("hum2band/music/keyfinding.py", ["tests/test_keyfinding.py", "tests/test_music_properties.py"]),
    "tuning": ("hum2band/music/tuning.py", ["tests/test_tuning.py", "tests/test_music_properties.py"]),
    "notes": ("hum2band/listen/notes.py",
              ["tests/test_notes.py", "tests/test_notes_rules.py", "tests/test_music_properties.py",
               "tests/test_robustness.py"]),
    "rhythm": ("hum2band/listen/rhythm.py",
               ["tests/test_rhythm_key.py", "tests/test_bar_fix_options.py",
                "tests/test_rhythm_units.py", "tests/test_rhythm_vote.py"]),
}

#: Mutants that change nothing a caller can observe: mutant name -> why.
EQUIVALENT: dict[str, str] = {
    "hum2band.music.chords.x__root_pc__mutmut_14":
        "'♭' replaced by 'B' instead of 'b': the name is upper-cased next, so the same key",
    "hum2band.music.chords.xǁChordSymbolǁ_parse_common__mutmut_21":
        "the chord text of a root-name error that cannot happen: the root regex lets only a "
        "letter A-G with at most one accidental through, and every such name is in the table",
    "hum2band.music.chords.xǁChordSymbolǁ_parse_common__mutmut_30":
        "skipping the exact suffix table: _reduce_suffix finds the same quality (the longest key "
        "that the whole suffix matches)",
    "hum2band.music.chords.xǁChordSymbolǁ_parse_common__mutmut_31":
        "looking up None in the suffix table gives None: the same fall-through as above",
    "hum2band.music.chords.xǁChordSymbolǁ_parse_common__mutmut_43":
        "the chord text of a bass-name error that cannot happen (same regex argument as the root)",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_3":
        "reduce_extended_chords=None is falsy like False",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_5":
        "reduce_extended_chords left out: mir_eval's default is False",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_19":
        "the initial best quality is always replaced: every quality scores above the start score",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_20": "as above",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_21":
        "a start score of +1 instead of -1: the same choice on all 2048 pitch-class sets (checked)",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_22":
        "a start score of -2 instead of -1: below every score either way",
    "hum2band.music.chords.x__nearest_quality_from_harte__mutmut_29":
        "a weight of 1.5 instead of 0.5 on the third/fifth agreement: the same choice on all 2048 "
        "pitch-class sets (checked exhaustively)",
    "hum2band.music.chords.x_parse_chord_line__mutmut_7":
        "not folding '||' into '|': the empty bar between the two is skipped anyway",
    "hum2band.music.chords.x_vocabulary__mutmut_22":
        "i / 12 != 0 and i % 12 != 0 agree for the intervals 0-11 the qualities use",
    "hum2band.music.chords.x_vocabulary__mutmut_23":
        "i % 13 != 0 and i % 12 != 0 agree for the intervals 0-11 the qualities use",
    "hum2band.music.tuning.x__wrap_cents__mutmut_3":
        "(c - 50) % 100 - 50 equals (c + 50) % 100 - 50: -50 and +50 are the same mod 100",
    "hum2band.music.tuning.x__wrap_cents__mutmut_5": "dtype None: every caller passes floats",
    "hum2band.music.tuning.x__wrap_cents__mutmut_7": "dtype left out: every caller passes floats",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_3":
        "dtype None on a list of Python floats: numpy makes float64 anyway",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_5": "dtype left out: float64 anyway",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_8": "dtype None: float64 anyway",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_10": "dtype left out: float64 anyway",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_18":
        "pitch > 1 instead of > 0: no note between MIDI 0 and 1 (8.2-8.7 Hz) comes from a pitch "
        "tracker (they stop above 30 Hz)",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_36": "arange step None is step 1",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_39": "arange step left out is step 1",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_41":
        "a grid from -51: -51 cents is +49 on the circle, already on the grid; the result is wrapped",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_42":
        "a grid to +50: +50 is -50 on the circle, already on the grid (argmax keeps the first)",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_88":
        "|u| <= 1 instead of < 1: the biweight (1 - u^2)^2 is 0 at |u| = 1 either way",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_97":
        "w.sum() < 0 instead of <= 0: the sum is never 0 -- the density's mode lies within the "
        "kernel of a note, so a note is always inside the 50-cent window",
    "hum2band.music.tuning.x_estimate_tuning_cents__mutmut_99": "as above: the branch is never taken",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_15":
        "np.array of the notes' onsets without dtype=float: Note times and pitches are floats "
        "(the transcriber's and every caller's); integers would give the same values",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_17": "as above",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_20": "as above, the offsets",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_22": "as above, the offsets",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_29": "as above, the pitches",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_31": "as above, the pitches",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_52":
        "the keep mask as float ones instead of booleans: np.flatnonzero finds the same onsets",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_54": "as above",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_60":
        "keep[i] = None in a boolean array stores False",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_67":
        "np.append(idx[1:], None): the last group's slice off[a:None] runs to the end, as "
        "off[a:len(on)]",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_121":
        "np.asarray of the onset-strength curve without dtype=float: np.interp reads integer "
        "frames and strengths as the same numbers",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_123": "as above",
    "hum2band.listen.rhythm.x_onsets_from_notes__mutmut_125":
        "len >= 1 instead of > 1: a one-frame curve reads the same strength at every onset, so "
        "every factor is 0.5 + 0.5 = 1 (or the curve is skipped when that strength is <= 0)",
    "hum2band.listen.rhythm.x_pulse_candidates__mutmut_11": "x * 1.0 instead of x / 1.0",
    "hum2band.listen.rhythm.x_pulse_candidates__mutmut_85":
        "max(i - 3, 1): i is the lag-grid index nearest the fine period, which is >= lo_s; with "
        "lo_s >= 0.106 s (rhythm_hypotheses uses the default 0.12 s) i >= 4, so i - 3 >= 1",
    "hum2band.listen.rhythm.x_dp_pulse__mutmut_13":
        "steps as floats: they hold the same integer counts, and np.arange(1, k + 1) / k gives "
        "the same pulse times",
    "hum2band.listen.rhythm.x_dp_pulse__mutmut_15": "as above",
    "hum2band.listen.rhythm.x_make_track__mutmut_3":
        "the pulse indices as integers: np.interp maps the onsets to the same pulse units",
    "hum2band.listen.rhythm.x_make_track__mutmut_5": "as above",
    "hum2band.listen.rhythm.x_make_track__mutmut_69": "astype(None) is float64, as astype(float)",
    "hum2band.listen.rhythm.x_make_track__mutmut_72":
        "np.zeros(1) instead of np.zeros(0) when there are no pairs: the argsort of the empty "
        "pair_du selects none of it",
    "hum2band.listen.rhythm.x__repetition__mutmut_3":
        "len(du) == 1 instead of == 0: with one pair or none no lag window holds 3 pairs, so "
        "every lag gets 0 either way",
    "hum2band.listen.rhythm.x__repetition__mutmut_11":
        "the lags without dtype=float: lags - tol_u and lags + tol_u are floats anyway",
    "hum2band.listen.rhythm.x__repetition__mutmut_13": "as above",
    "hum2band.listen.rhythm.x__repetition__mutmut_35":
        "np.maximum(n, 2): the share is only used where n >= 3",
    "hum2band.listen.rhythm.x__onset_grid__mutmut_3":
        "the pulse indices as integers: k[:-1] + 0.5 and np.interp give the same values",
    "hum2band.listen.rhythm.x__onset_grid__mutmut_5": "as above",
    "hum2band.listen.rhythm.x_note_cues__mutmut_14":
        "pitch classes as floats for the triad test: np.mod and np.isin compare the same "
        "numbers",
    "hum2band.listen.rhythm.x_note_cues__mutmut_18": "astype(None) is float64, as astype(float)",
    "hum2band.listen.rhythm.x_note_cues__mutmut_40":
        "n or True: with no onsets ons.pitch[:1] is the same empty array as ons.pitch",
    "hum2band.listen.rhythm.x_note_cues__mutmut_63":
        "(gap > 0.25) / 1.0 instead of * 1.0: the same floats",
    "hum2band.listen.rhythm.x_note_cues__mutmut_66": "as above, the phrase ends",
    "hum2band.listen.rhythm.x__chord_fit_by_shift__mutmut_15":
        "one more segment per shift: it is empty, and an empty segment adds fit 0 times weight "
        "0 to both sums",
    "hum2band.listen.rhythm.x__phase_features__mutmut_25":
        "per_pos(None) counts the notes per position, as per_pos(ones) does (as integers)",
    "hum2band.listen.rhythm.x__phase_features__mutmut_55":
        "the else branch is dead: past the early return some onset is on the grid, so the "
        "arrays of the notes on the grid are never empty",
    "hum2band.listen.rhythm.x__phase_features__mutmut_57": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_76": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_78": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_91": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_94": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_98": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_101": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_122": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_123": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_131": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_132": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_159": "as above",
    "hum2band.listen.rhythm.x__phase_features__mutmut_138":
        "astype(None) is float64, as astype(float)",
    "hum2band.listen.rhythm.x__phase_features__mutmut_184":
        "astype(None) is float64, as astype(float)",
    "hum2band.listen.rhythm.x__phase_features__mutmut_268":
        "astype(None) is float64, as astype(float)",
    "hum2band.listen.rhythm.x__phase_features__mutmut_174":
        "max(len(p0), 2): differs only with one note on the grid, whose centred hold is 0, so "
        "the sum divided is 0",
    "hum2band.listen.rhythm.x__phase_features__mutmut_207":
        "np.full(q_len, None): the positions left unset hold None, which equals none of the "
        "categories 0-3, as -1 does",
    "hum2band.listen.rhythm.x__phase_features__mutmut_211":
        "-2 instead of -1: any value outside 0-3 is 'no category'",
    "hum2band.listen.rhythm.x__phase_features__mutmut_276":
        "q_len / d instead of //: q_len is a multiple of d, so the parity test is the same",
    "hum2band.listen.rhythm.x__phase_features__mutmut_284":
        "down - q_len // 2 instead of + (mod q_len): q_len = d * beats per bar is even (d is 4 "
        "or 6 times a power of 2), so both are half a bar away",
    "hum2band.listen.rhythm.x__phase_features__mutmut_311":
        "(q_len / d) % 2 instead of (q_len // d) % 2: q_len is a multiple of d",
    "hum2band.listen.rhythm.x_fix_errors__mutmut_11":
        "err[sh] = instead of += for the downbeat term: err starts at 0 and this term comes "
        "first",
    "hum2band.listen.rhythm.x_fix_errors__mutmut_30":
        "the pulse indices as integers: np.interp gives the same first-note position",
    "hum2band.listen.rhythm.x_fix_errors__mutmut_32": "as above",
    "hum2band.listen.rhythm.x__grid_times__mutmut_47":
        "the pulse indices as integers: np.interp gives the same grid times",
    "hum2band.listen.rhythm.x__grid_times__mutmut_49": "as above",
    "hum2band.listen.rhythm.x__grid_times__mutmut_51":
        "u <= 0: at u = 0 the extrapolation gives pulses[0], as the interpolation does",
    "hum2band.listen.rhythm.x__grid_times__mutmut_52":
        "u < 1: for 0 <= u < 1 the extrapolation at the first period, pulses[0] + u * "
        "(pulses[1] - pulses[0]), is the linear interpolation between the first two pulses",
    "hum2band.listen.rhythm.x__steady_rhythm__mutmut_50":
        "the beat indices as floats: index % beats_per_bar == 0 tests the same integer values",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_11":
        "the beat times without dtype=float: they are only interpolated and differenced",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_13": "as above",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_21":
        "make_track's pairs up to 1 pulse apart instead of 0: the pairs feed only the "
        "repetition cue, which grid_statistics does not read",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_32":
        "the downbeat indices as floats: int(k_down[0]) is the same",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_41":
        "the downbeat times without dtype=float: np.interp reads them as the same numbers",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_43": "as above",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_70":
        "log2(hold * beat) instead of log2(hold / beat): the log-holds are centred per take, so "
        "a constant factor cancels",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_86":
        "astype(None) is float64, as astype(float)",
    "hum2band.listen.rhythm.x_grid_statistics__mutmut_91":
        "astype(None) is float64, as astype(float)",
    "hum2band.listen.notes.x__runs__mutmut_5":
        "np.asarray(mask, None): every caller passes a boolean mask (voicing's or its negation), "
        "which stays boolean",
    "hum2band.listen.notes.x__runs__mutmut_7": "dtype left out: as above",
    "hum2band.listen.notes.x__runs__mutmut_11":
        "astype(None) (float64): the steps are +-1.0 instead of +-1, found by the same == 1 / == -1",
    "hum2band.listen.notes.x__fill_nan__mutmut_3":
        "dtype None: its one caller (_smooth) passes a float array (np.where with np.nan)",
    "hum2band.listen.notes.x__fill_nan__mutmut_5": "dtype left out: as above",
    "hum2band.listen.notes.x__smooth__mutmut_5":
        "np.where(voiced, pitch, None) gives an object array whose None becomes nan in _fill_nan's "
        "np.asarray(x, float): the same filled contour",
    "hum2band.listen.notes.x__smooth__mutmut_10":
        "k >= 1 instead of k > 1: a running median of one sample is the sample itself",
    "hum2band.listen.notes.x_median_filter_nearest__mutmut_3":
        "dtype None: every caller passes float64 (the same values for any numeric input)",
    "hum2band.listen.notes.x_median_filter_nearest__mutmut_5": "dtype left out: as above",
    "hum2band.listen.notes.x_median_filter_nearest__mutmut_35":
        "np.partition at rank k // 3 instead of k // 2 before reading rank k // 2: the same rank for "
        "the 3-frame default (and k = 2); for any window of 4-39 frames numpy 2.4 leaves the rows "
        "fully sorted (checked on random contours), so the same element",
    "hum2band.listen.notes.x_median_filter_nearest__mutmut_32":
        "axis left out: np.partition's default axis -1 is axis 1 of the 2-D window view",
    "hum2band.listen.notes.x_interval_pitches__mutmut_30":
        "dtype None: the intervals are only divided by the hop and rounded, the same for ints",
    "hum2band.listen.notes.x_interval_pitches__mutmut_32": "dtype left out: as above",
    "hum2band.listen.notes.x_interval_pitches__mutmut_34":
        "reshape(-2, 2): numpy 2.4 (constraints.txt) reads any negative size as 'the rest', as -1",
    "hum2band.listen.notes.x_interval_pitches__mutmut_40":
        "no upper clip on the first frame: an onset past the end gives b = clip(., a, len) = len <= a, "
        "an empty interval (nan) either way",
    "hum2band.listen.notes.x_interval_pitches__mutmut_51":
        "no upper clip on the last frame: slicing past the end of the arrays stops at their end",
    "hum2band.listen.notes.x_segment_notes__mutmut_34":
        "getattr(track, 'narrow_band', None) instead of False: both falsy",
    "hum2band.listen.notes.x_segment_notes__mutmut_95":
        "peak_db 1.0 instead of 0.0 when no frame is voiced: then there is no note to give a velocity",
    "hum2band.listen.notes.x_segment_notes__mutmut_104":
        "(b - a) / 2 instead of // 2: for integer keep, keep - 1 > a + m + 0.5 exactly when "
        "keep - 1 > a + m",
    "hum2band.listen.notes.x_segment_notes__mutmut_127":
        "no upper clip on the velocity: a note's frames are voiced, so its 90th-percentile loudness "
        "is at most the loudest voiced frame's and the velocity at most 100",
    "hum2band.listen.notes.x_segment_notes__mutmut_138": "128 instead of 127 on that clip: as above",
    "hum2band.listen.notes.x__split_by_pitch__mutmut_14":
        "i <= b: a cut at i = b only adds the empty piece (b, b), which the final filter drops",
    "hum2band.listen.notes.x__split_by_pitch__mutmut_17":
        "the else branch is dead: i starts at a + hold, restarts at start + hold after a cut and "
        "only grows, so i - start >= hold always",
    "hum2band.listen.notes.x__split_by_pitch__mutmut_26": "max(hold * 3, 2): hold >= 1, so hold * 3 >= 3",
    "hum2band.listen.notes.x__split_by_pitch__mutmut_27":
        "i + start >= hold: always true, as i - start >= hold (above) and start >= 0",
    "hum2band.listen.notes.x__split_by_pitch__mutmut_56":
        "d >= c: the cuts strictly increase (each at least hold after the last, all below b), so "
        "no piece is empty",
    "hum2band.listen.notes.x__split_by_dips__mutmut_22":
        "n <= 2 * min_len: for n = 2 * min_len the scan min_len <= i < n - min_len is empty anyway",
    "hum2band.listen.notes.x__split_by_dips__mutmut_23":
        "n < 2 / min_len (never): for n < 2 * min_len the scan is empty, the same single piece",
    "hum2band.listen.notes.x__split_by_dips__mutmut_74":
        "j - 1 < n instead of j + 1 < n: the guard never stops the rise search -- the loudest frame m "
        "of the right window (m <= n - 1, m <= i + w) rises more than half, so j stops by m - 1",
    "hum2band.listen.notes.x__split_by_dips__mutmut_75":
        "j + 2 < n: as above; where it first fails (j + 1 = m = n - 1) the rise test stops j there too",
    "hum2band.listen.notes.x__split_by_dips__mutmut_76": "j + 1 <= n: as above, the guard never binds",
    "hum2band.listen.notes.x__split_by_dips__mutmut_85":
        "j - i <= w instead of < w: as above, j stops by m - 1 <= i + w - 1, so neither binds",
    "hum2band.listen.notes.x__split_by_dips__mutmut_117":
        "d >= c: no piece is empty -- each cut lies min_len after the last, and before b "
        "(cut - a <= i + (j - i) // 2 with j <= n - 2)",
    "hum2band.listen.notes.x__refine_onsets__mutmut_45":
        "n >= 0: for n = 0 the added test compares the last note's end with the first note's "
        "start, which never match for notes in time order",
    "hum2band.listen.notes.x__refine_onsets__mutmut_63":
        "(b - j) / 2 instead of // 2: for integers k, j: k - 1 > j + m + 0.5 exactly when k - 1 > j + m",
    "hum2band.listen.notes.x__refine_onsets__mutmut_105":
        "j - 1 instead of j + 1: in that branch lo >= j + (b - j) // 2 >= j + 1 (b - lo > 1 needs "
        "b - j >= 3), so lo + argmin is the larger either way",
    "hum2band.listen.notes.x__steady_part__mutmut_2":
        "n <= 5: for n = 5, ceil(5 * 0.85) = 5 keeps the whole contour anyway",
    "hum2band.listen.notes.x__steady_part__mutmut_3": "n < 6: as above",
    "hum2band.listen.notes.x_repair_register__mutmut_100":
        "<= for < against stray_max_s - 1e-6: note lengths are whole 10 ms frames, so none lies "
        "within a microsecond of 0.199999 s (the 1e-6 is there to absorb the float error of "
        "offset - onset)",
}

#: mutmut's exit codes per mutant (a mutant that makes the tests time out is caught too, as
#: mutmut itself counts it).
SURVIVED, NO_TESTS = 0, 33
CAUGHT = {1, 3, 24, -24, 36, 152, 255}


def _copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    if dest.exists():
        shutil.rmtree(dest)
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("build/", "out/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _config(module: str, tests: list[str]) -> str:
    selection = "\n    ".join(t for t in tests if (ROOT / t).is_file())
    return ("\n[mutmut]\nsource_paths=hum2band/\nonly_mutate=\n    " + module
            + "\npytest_add_cli_args_test_selection=\n    " + selection
            + "\nalso_copy=\n    examples/\n    models/\n    soundfonts/\n    tests/\n")


def run_module(name: str, children: int) -> dict:
    module, tests = MODULES[name]
    work = BUILD / name
    _copy_project(work)
    with open(work / "setup.cfg", "a") as f:
        f.write(_config(module, tests))
    mutmut = Path(sys.executable).with_name("mutmut")
    proc = subprocess.run([str(mutmut), "run", "--max-children", str(children)], cwd=work,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    meta = work / "mutants" / (module + ".meta")
    if not meta.is_file():
        raise SystemExit(f"mutation: mutmut found no mutants in {module} "
                         f"(exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {"module": module, "codes": codes}


@dataclass
class Score:
    """One module's mutants by outcome."""

    total: int
    killed: int
    equivalent: int
    survived: int
    no_tests: int
    survivors: list[str]

    @property
    def score(self) -> float:
        scored = self.total - self.equivalent
        return self.killed / scored if scored else 1.0


def score_of(codes: dict) -> Score:
    """mutmut's exit code per mutant -> the counts of the report."""
    count = Counter(codes.values())
    return Score(total=len(codes), killed=sum(count[c] for c in CAUGHT),
                 equivalent=sum(1 for k, c in codes.items() if k in EQUIVALENT and c not in CAUGHT),
                 survived=count[SURVIVED], no_tests=count[NO_TESTS],
                 survivors=sorted(k for k, c in codes.items() if c not in CAUGHT and k not in EQUIVALENT))


def summary(name: str, module: str, s: Score) -> str:
    return (f"{name:<13} {module:<36} {s.total:>5} {s.killed:>6} {s.equivalent:>5} "
            f"{s.survived:>8} {s.no_tests:>8} {s.score:>6.1%}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", metavar="MODULE",
                    help=f"some of: {', '.join(MODULES)} (default: all)")
    ap.add_argument("--children", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                    help="mutants tested at once (default: cores - 1)")
    ap.add_argument("--show", action="store_true", help="print the diff of every surviving mutant")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    names = args.modules or list(MODULES)
    print(f"{'module':<13} {'file':<36} {'total':>5} {'killed':>6} {'equiv':>5} "
          f"{'survived':>8} {'no tests':>8} {'score':>6}", flush=True)
    worst = 1.0
    totals = Counter()
    for name in names:
        result = run_module(name, args.children)
        s = score_of(result["codes"])
        print(summary(name, result["module"], s), flush=True)
        totals.update(total=s.total, killed=s.killed, equivalent=s.equivalent)
        worst = min(worst, s.score)
        if args.show:
            mutmut = Path(sys.executable).with_name("mutmut")
            for key in s.survivors:
                diff = subprocess.run([str(mutmut), "show", key], cwd=BUILD / name,
                                      capture_output=True, text=True).stdout
                print(f"--- {key}\n" + "\n".join(l for l in diff.splitlines() if l[:1] in "+-"
                                               and not l.startswith(("+++", "---"))))
    if len(names) > 1:
        scored = totals["total"] - totals["equivalent"]
        print(f"{'all':<13} {'':<36} {totals['total']:>5} {totals['killed']:>6} "
              f"{totals['equivalent']:>5} {'':>8} {'':>8} {totals['killed'] / max(scored, 1):>6.1%}")
    print(f"target: mutation score >= 80 % on every module; lowest here {worst:.1%}")
    return 0 if worst >= 0.80 else 1


if __name__ == "__main__":
    raise SystemExit(main())
