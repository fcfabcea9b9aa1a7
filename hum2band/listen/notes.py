"""Note segmentation: a frame-wise pitch track in, sung notes out.

Real singing is not a piano: notes start with a scoop or a glide, wobble with vibrato, repeat on
the same pitch with only a consonant between them, and the tracker now and then jumps an octave.
The segmenter works in five steps over a :class:`~hum2band.listen.pitch.PitchTrack`:

1. **Voicing** -- a frame is sung when the tracker is confident and the frame is loud enough
   relative to the take's own noise floor (a phone memo's hiss sets that floor; digital silence
   around the take does not), or clearly pitched and a little above that floor (a noisy room);
   a sung stretch reaches back over the softer frames before it that already hold its pitch.
2. **Octave repair** -- isolated frames an octave away from their neighbourhood are folded back;
   frames far below it (two notes read at once: a new note over the previous one's echo in a
   room) take the pitch of the frame after them.
3. **Splitting** -- each voiced stretch is cut where the pitch settles on a new semitone for long
   enough (so vibrato does not split a note, and a short glide into the next pitch stays with it),
   and where the loudness of the upper harmonics dips and rises again (a syllable onset:
   repeated notes on one pitch, or a consonant between notes sung on one breath), or the plain
   loudness dips deeply (two notes on one pitch with a room's tail between them).
4. **Clean-up** -- fragments too short to be notes are merged into a neighbour or dropped; each
   note starts where its loudness has risen and ends where it has fallen, or where its final
   fall turns from the voice's drop into a room's steady decay (the echo stays pitched and
   voiced after the voice has stopped); each note's pitch is the median of its contour without
   the release at its end.
5. **Register** -- a note an octave off both its neighbours (a tracker's slip for a whole note) is
   folded back, and a short pitched scrap far from both (a breath, a click, a room's tail) is
   dropped (:func:`repair_register`); so is any note far under the whole take's register (a hum
   in the room, :func:`drop_below_register`).

All thresholds live in :class:`SegmenterSettings`; they were chosen on half of the SSVD
development takes and checked on the other half (``benchmarks/transcription.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..music.melody import Note
from .pitch import DIGITAL_SILENCE_BELOW_PEAK_DB, PitchTrack, level_reference_db

#: The pitch a sung stretch starts on is the median over this much of its first frames, s.
BACKTRACK_HEAD_S = 0.05
#: A band's noise in :func:`syllable_loudness_db` is its median power over the frames that are
#: not sung (nor digital silence): the pauses and breaths, where only the room, the line or the
#: noise around the singer sounds. Chosen on the even SSVD takes (COnPOff as recorded / pink noise
#: 20 dB / babble 20 dB, before the guard below): the median 0.674 / 0.651 / 0.615; the 30th
#: percentile 0.674 / 0.646 / 0.598, the 70th 0.664 / 0.652 / 0.625; the 10th percentile over all
#: frames 0.674 / 0.644 / 0.588.
SYLLABLE_NOISE_PERCENTILE = 50.0
#: ... leaving out the frames within this long of a sung frame, s: those whose windows of
#: ``bright_bands_db`` (50 ms wide) reach into the singing. (On the even SSVD takes 0 to 0.1 s
#: measured the same within 0.006 COnPOff in every condition; without it a take whose pauses are
#: digital silence would measure its noise on the voice's own edges.)
SYLLABLE_NOISE_GUARD_S = 0.03
#: ... when the take holds at least this much of such frames, s; otherwise (a take sung from end
#: to end) the noise is the 10th percentile (:data:`SYLLABLE_FALLBACK_PERCENTILE`) over all its
#: frames that are not digital silence.
SYLLABLE_NOISE_MIN_S = 0.2
SYLLABLE_FALLBACK_PERCENTILE = 10.0


@dataclass(frozen=True)
class SegmenterSettings:
    """Segmenter thresholds. The defaults were searched (one setting at a time, on COnPOff plus
    half COnP) on the even-numbered SSVD development takes and checked on the odd-numbered ones;
    ``bridge_gap_s`` and ``min_note_s`` keep their earlier values (0.03 s, 0.10 s), because the
    searched ones (0, 0.14 s) lost tempo and key on two of the 120 synthesized takes of
    ``benchmarks/rhythm_key.py`` for 0.015 COnPOff."""

    #: A frame is voiced when the tracker's confidence is at least this.
    min_periodicity: float = 0.5
    #: ... and it is at least this many dB above the noise floor of the take.
    min_snr_db: float = 12.0
    #: ... or, for a frame this clearly pitched (a voice, not breath or noise) ...
    clear_periodicity: float = 0.9
    #: ... at least this many dB above the noise floor: in a noisy room the floor rises to the
    #: quieter notes (pink noise at 20 dB SNR, against the re-measured reference: COnPOff 0.711
    #: -> 0.726 on the even SSVD takes, 0.730 -> 0.740 on the odd ones; as recorded 0.768 ->
    #: 0.770 and 0.786 -> 0.785). A gate of 0.8 gained more in noise but took the onsets of the
    #: voiced consonants ("n" of "no") of the shipped examples for notes.
    clear_snr_db: float = 8.0
    #: ... and no more than this many dB below the take's loud frames.
    max_below_peak_db: float = 40.0
    #: A sung stretch reaches back over up to this much of the frames just before it that hold its
    #: pitch and are clearly pitched (see :func:`voicing`), s. On the even SSVD takes (as for
    #: ``loud_dip_db``) it gave 0.663 -> 0.669 as recorded and 0.553 -> 0.562 in a room of
    #: RT60 0.4 s.
    onset_backtrack_s: float = 0.10
    #: ... frames at least this confident ...
    backtrack_periodicity: float = 0.7
    #: ... at least this many dB above the noise floor ...
    backtrack_snr_db: float = 6.0
    #: ... and within this of the pitch of the stretch's first frames, semitones.
    backtrack_semitones: float = 1.0
    #: Unvoiced gaps shorter than this inside a note are bridged, s.
    bridge_gap_s: float = 0.03
    #: A new note starts when the pitch sits this many semitones away from the current one ...
    change_semitones: float = 1.1
    #: ... for at least this long, s.
    change_hold_s: float = 0.09
    #: The cut then moves back, by up to this long (s), to the earliest frame already on the new
    #: pitch (within ``change_back_semitones`` of its median over the hold) from which on at least
    #: ``change_back_share`` of the frames are: the new note is heard from where its pitch
    #: sounds, even when a frame or two between reads the old one (the previous note's tail in a
    #: room, a wobble). On the even SSVD takes (``benchmarks/robustness.py``) it gave COnP 0.740
    #: -> 0.745 as recorded, 0.563 -> 0.578 in a room of RT60 0.8 s (COnPOff 0.669 -> 0.670,
    #: 0.562 -> 0.564 at 0.4 s, 0.329 -> 0.340 at 0.8 s); on the odd ones COnPOff 0.687 -> 0.691,
    #: 0.510 -> 0.515, 0.298 -> 0.309.
    change_back_s: float = 0.06
    change_back_semitones: float = 0.5
    change_back_share: float = 0.6
    #: A dip this deep in the syllable loudness (``PitchTrack.bright_db``, else ``rms_db``; dB,
    #: against the smaller of the peaks around it) splits a note.
    dip_db: float = 4.0
    #: ... this deep in a narrow-band take (``PitchTrack.narrow_band``: a telephone line, AMR-NB),
    #: whose consonants lose their hiss above 4 kHz (on the even SSVD takes through a telephone
    #: band, 5 dB gave COnPOff 0.753 against 0.739 at 4 dB; on them as recorded 4 dB is best).
    narrow_band_dip_db: float = 5.0
    #: In a reverberant take (``PitchTrack.reverberance`` at least ``dip_band_reverberance``: the
    #: dereverberation stage found a room's late echo), a syllable dip splits only where the
    #: voice's bands dip together: at least ``dip_band_share`` of the bands of
    #: ``PitchTrack.bright_bands_db`` above the lowest (0-300 Hz, the fundamental) that hold the
    #: voice (weight in :func:`syllable_loudness_db` at least ``dip_band_weight``) lie
    #: ``dip_band_db`` or more under the smaller of their own peaks around the dip. A consonant
    #: dims the voice across its spectrum at once; in a room the vibrato sweeps the harmonics
    #: across the room's modes, and a few bands swing 7-10 dB at a time, which moves the summed
    #: loudness as deep as a consonant and split held notes in two (SSVD 1214 at 8.4 s, 1223 at
    #: 23.5 s at RT60 0.4 s). Of the syllable cuts on the even SSVD takes in the 0.4 s room,
    #: those with no annotated onset within 80 ms had a median share of 0.33, those with one 0.67
    #: (as recorded 0.53 and 0.73). ``benchmarks/robustness.py``, COnPOff at RT60 0.4 s: even
    #: takes 0.657 -> 0.661, odd 0.636 -> 0.644, all 24 0.646 -> 0.653 (dOff -0.055 -> -0.049);
    #: dry takes are not judged by it. Shares 0.2 / 0.4 measured 0.660 / 0.655 on the even takes
    #: (offline), depths 2 / 4 dB 0.662 / 0.655. Applied to every take it also gained as recorded
    #: (0.702 -> 0.705) but flipped a tempo tie through MP3 (1156).
    dip_band_share: float = 0.3
    dip_band_db: float = 3.0
    dip_band_weight: float = 0.25
    dip_band_reverberance: float = 0.5
    #: A dip this deep in the plain loudness (``PitchTrack.rms_db``; dB, against the smaller of the
    #: peaks around it) splits a note too: two notes on one pitch with a room's tail between them,
    #: which bridges the silence the voice left and blurs the consonant in ``bright_db``. On the
    #: even SSVD takes (``benchmarks/robustness.py``, COnPOff against the annotation) it gave
    #: 0.649 -> 0.669 as recorded and 0.532 -> 0.562 in a room of RT60 0.4 s.
    loud_dip_db: float = 10.0
    #: ... with the peaks around it searched this far to each side (wider than ``dip_window_s``:
    #: the tail fills the dip from one side; 0.08 s gave 0.539 in the room, 0.2 s lost 0.015 as
    #: recorded), s.
    loud_dip_window_s: float = 0.16
    #: Peaks around a dip are searched this far to each side, s.
    dip_window_s: float = 0.08
    #: Notes shorter than this are merged into a neighbour or dropped, s.
    min_note_s: float = 0.10
    #: Median filter over the pitch contour, frames.
    smooth_frames: int = 3
    #: A note is heard from where its loudness comes within this many dB of the note's peak
    #: (a voiced consonant such as the "m" of "mi" is pitched but not yet the note), dB.
    onset_rise_db: float = 9.0
    #: ... looked for within this long after the first voiced frame, s.
    onset_search_s: float = 0.05
    #: A note ends where its loudness has fallen this many dB below its peak, dB.
    offset_fall_db: float = 14.0
    #: ... or earlier, where its final fall turns from the voice's drop into a room's decay (see
    #: :func:`_tail_knee`): when the voice stops in a room, the loudness drops with the direct
    #: sound and then falls on at the steady rate of the room's echo, still pitched and still
    #: voiced, so the ``offset_fall_db`` point lies in the echo. The final fall (from the last
    #: frame within ``tail_top_db`` of the loudest frame of the note's second half, down to its
    #: lowest frame before the next note, the take's noise floor plus ``tail_floor_db``, or
    #: ``tail_max_s``) is fitted with two joined straight lines (in dB); the note ends at the
    #: joint when the second falls at a room's rate (``tail_min_db_per_s`` to
    #: ``tail_max_db_per_s``: 60 dB in 1.5 s to 60 dB in 0.24 s) and the first at least
    #: ``tail_knee_ratio`` times as fast, over at least ``tail_min_s`` of decay. On the even SSVD
    #: takes (``benchmarks/robustness.py``, COnPOff) it gave 0.674 -> 0.674 as recorded, 0.576 ->
    #: 0.580 in a room of RT60 0.4 s and 0.345 -> 0.356 at 0.8 s; checked on the odd ones: 0.696
    #: -> 0.696, 0.513 -> 0.532, 0.329 -> 0.350. Ratios 1.5 and 3 measured 0.578 and 0.574 in the
    #: room (even); ``tail_top_db`` 2 and 4, a shortest decay of 0.03 or 0.06 s, a longest of
    #: 0.25 or 0.6 s, a floor margin of 3 or 10 dB and slowest rates of 20 or 60 dB/s all
    #: measured within 0.004 of the values here.
    tail_top_db: float = 3.0
    tail_floor_db: float = 6.0
    tail_max_s: float = 0.4
    tail_min_s: float = 0.04
    tail_min_db_per_s: float = 40.0
    tail_max_db_per_s: float = 250.0
    tail_knee_ratio: float = 2.0
    #: A note that follows another without a break is heard this long after the cut (the
    #: pitch has left the old note but the new one is not yet established), s.
    joined_onset_delay_s: float = 0.02
    #: Frames at a note's end further than this from its pitch are a fall off it, semitones.
    tail_off_semitones: float = 1.0
    #: A note sung straight into the next ends within this long before the next note, s ...
    joined_offset_search_s: float = 0.08
    #: ... at the first frame where its loudness has fallen this fraction of the way from the
    #: loudest to the quietest frame there (0: the quietest frame). The voice stops where the
    #: loudness falls, not where it bottoms out: in a room the tail falls on until the next note
    #: starts. On the even SSVD takes (as for ``loud_dip_db``) 0.5 against 0 gave 0.665 -> 0.669
    #: as recorded, 0.525 -> 0.562 in a room of RT60 0.4 s and 0.300 -> 0.329 at 0.8 s; searching
    #: further back than 0.08 s lost COnP.
    joined_offset_fraction: float = 0.5
    #: A piece cut off by the pitch that is shorter than this and ends at least
    #: ``scoop_approach_semitones`` closer to the next piece's pitch than it starts is a scoop
    #: into that note, not a note of its own, s.
    scoop_max_s: float = 0.2
    scoop_approach_semitones: float = 0.3
    #: A note further than this from both its neighbours, in the same direction, is out of the
    #: register of the notes around it (see :func:`repair_register`), semitones.
    leap_semitones: float = 7.0
    #: ... it is folded back by octaves when it lies within this of a whole number of octaves from
    #: their register (a tracker's slip is an exact octave; the true note lies near the notes
    #: around it), semitones ...
    octave_tolerance_semitones: float = 3.0
    #: ... or else dropped when shorter than this (a breath, a click, a scrap of the room's tail), s.
    #: (A piece at the start or end of a sung stretch shorter than this, an octave from the piece
    #: it touches, is the tracker's octave slip and is moved back: see ``_fold_octave_pieces``.)
    stray_max_s: float = 0.2
    #: A note further than this below the take's register (the median pitch of its notes, each
    #: weighed by its length) is not sung, semitones: no melody reaches that far under its own
    #: middle, while a low hum in the room or a tracker's reading of two notes at once gives
    #: pitched notes near 55 Hz under a soprano's take (SSVD 1217, 1223, 1227: A1 under a median
    #: near A4). On the even SSVD takes (COnP / COnPOff) it gave 0.750 / 0.675 -> 0.753 / 0.678 as
    #: recorded and 0.715 / 0.588 -> 0.718 / 0.590 in a room of RT60 0.4 s; the odd takes have
    #: no such notes (no change); 15 semitones measured the same as 18.
    below_register_semitones: float = 18.0
    #: A frame whose pitch reads more than this far below the pitch around it (the running median
    #: of :func:`repair_octaves`) is two notes heard at once, semitones: where a new note starts
    #: over the previous one's echo in a room, the tracker finds their common period, two octaves
    #: or more under either (59 over 54 read as 35). Such a frame takes the pitch of the frame
    #: after it, the new note's, so the new note is cut where it starts sounding and not where the
    #: echo has died away. On the even SSVD takes (COnP / COnPOff, with ``tail_knee_ratio``) it
    #: gave 0.747 / 0.674 -> 0.750 / 0.675 as recorded, 0.706 / 0.580 -> 0.715 / 0.588 in a room
    #: of RT60 0.4 s and 0.578 / 0.356 -> 0.601 / 0.383 at 0.8 s, 0.751 / 0.669 -> 0.750 / 0.669
    #: through a telephone band; checked on the odd ones: 0.750 / 0.696 -> 0.749 / 0.696, 0.671
    #: / 0.532 -> 0.669 / 0.530, 0.581 / 0.350 -> 0.604 / 0.365, 0.750 / 0.697 -> 0.746 / 0.694.
    #: 13 semitones measured the same in the room and 0.002 worse through the telephone band; 19
    #: lost 0.013 at 0.8 s; filling such frames with the running median (the old note) instead
    #: gained less (0.583 and 0.374 in the rooms).
    mixture_below_semitones: float = 16.0


def segment_notes(track: PitchTrack, settings: SegmenterSettings | None = None) -> list[Note]:
    """Cut a pitch track into notes.

    Parameters
    ----------
    track : PitchTrack
    settings : SegmenterSettings, optional

    Returns
    -------
    list of Note
        In time order, not overlapping; ``midi`` is left at ``round(midi_pitch)`` until the tuning
        stage snaps it; ``velocity`` from each note's loudness relative to the take.
    """
    s = settings or SegmenterSettings()
    hop = track.hop_s
    voiced = voicing(track, s)
    pitch = repair_octaves(track.midi_pitch, voiced,
                           mixture_below=s.mixture_below_semitones)
    smooth = _smooth(pitch, voiced, s.smooth_frames)

    # Syllables show best in the high-emphasised loudness (see pitch.frame_bright_db), measured
    # where the voice stands above the take's noise.
    syllable_db, band_db = syllable_loudness_db(track, voiced, bands=True,
                                                min_weight=s.dip_band_weight)
    if band_db is not None and (s.dip_band_share <= 0
                                or getattr(track, "reverberance", 0.0) < s.dip_band_reverberance):
        band_db = None
    dips = replace(s, dip_db=s.narrow_band_dip_db) if getattr(track, "narrow_band", False) else s
    loud_dips = replace(s, dip_db=s.loud_dip_db, dip_window_s=s.loud_dip_window_s)
    notes: list[tuple[int, int]] = []
    for a, b in _runs(voiced):
        pieces = _split_by_pitch(smooth, a, b, s, hop)
        if _fold_octave_pieces(pieces, smooth, int(round(s.stray_max_s / hop))):
            pieces = _split_by_pitch(smooth, a, b, s, hop)
        for c, d in _merge_scoops(pieces, smooth, s, hop):
            for e, f in _split_by_dips(syllable_db, c, d, dips, hop, band_db):
                notes.extend(_split_by_dips(track.rms_db, e, f, loud_dips, hop))
    notes = _clean_up(notes, smooth, s, hop)
    notes = _refine_onsets(notes, track.rms_db, s, hop)
    # The clean-up's shortest note holds before onsets and ends are placed. A note that placing
    # them leaves shorter is a piece of a held note that a loudness dip cut off, not a note: in
    # a room the dereverberated tail dips inside held notes (SSVD 1196 at RT60 0.4 s read the
    # note 12.54-13.01 s as four of 0.06-0.08 s), and now and then a dry take's does too.
    min_len = max(1, int(round(s.min_note_s / hop)))
    notes = [(a, b) for a, b in notes if b - a >= min_len]

    out = []
    peak_db = np.max(track.rms_db[voiced]) if voiced.any() else 0.0
    for a, b in notes:
        midi_pitch = _note_pitch(smooth[a:b])
        # A fall or slide off the end of the note is not part of it.
        keep = b
        while keep - 1 > a + (b - a) // 2 and abs(smooth[keep - 1] - midi_pitch) > s.tail_off_semitones:
            keep -= 1
        b = keep
        loud = float(np.percentile(track.rms_db[a:b], 90))
        velocity = int(np.clip(round(100 + 2.0 * (loud - peak_db)), 20, 127))
        onset = float(track.times_s[a])
        offset = float(track.times_s[b - 1] + hop)
        out.append(Note(onset, offset, midi_pitch, int(round(midi_pitch)), velocity))
    return drop_below_register(repair_register(out, s), s)


#: The part of each note (fractions of its length) whose pitch the tuning stage reads
#: (:func:`settled_notes`): past the scoop or glide into the note, before its release.
SETTLED_PART = (0.3, 0.9)
#: Frames of that part further than this (semitones) from the note's own pitch are not read: the
#: tracker's slips on real voices (an octave, a fifth, a harmonic) and the next note's start.
SETTLED_NEAR_SEMITONES = 0.5


def settled_notes(notes: list[Note], track: PitchTrack) -> list[Note]:
    """The notes with the pitch each one settles on, for the tuning stage.

    A note's ``midi_pitch`` (:func:`segment_notes`) is the median of its whole contour but the
    release, scoop included: that names it best (leaving the start out lost SSVD note accuracy),
    but a singer who scoops up into every note pulls every note's pitch a few cents flat, and the
    take's tuning with it. Here ``midi_pitch`` is the median of the tracker's frames in
    :data:`SETTLED_PART` of the note instead, leaving out frames more than
    :data:`SETTLED_NEAR_SEMITONES` from the note's own pitch: the raw tracker slips on real
    voices by intervals that are not whole octaves (SSVD 364 read 52.5 as 45.7), which the
    segmenter's own contour has already repaired. A note under 5 frames, or with no such frame
    there, keeps its own pitch.

    Parameters
    ----------
    notes : list of Note
        From :func:`segment_notes` on ``track``.
    track : PitchTrack

    Returns
    -------
    list of Note
        Copies; only ``midi_pitch`` differs.
    """
    times = np.asarray(track.times_s, dtype=float)
    frames = np.asarray(track.midi_pitch, dtype=float)
    lo, hi = SETTLED_PART
    half_hop = 0.5 * track.hop_s  # a note spans frames [onset, offset - hop]: no rounding slips
    out = []
    for n in notes:
        a, b = np.searchsorted(times, [n.onset_s - half_hop, n.offset_s - half_hop])
        seg = frames[a:b]
        k = len(seg)
        pitch = n.midi_pitch
        if k >= 5:
            part = seg[int(k * lo):max(int(np.ceil(k * hi)), int(k * lo) + 1)]
            part = part[np.isfinite(part) & (np.abs(part - pitch) < SETTLED_NEAR_SEMITONES)]
            if len(part):
                pitch = float(np.median(part))
        out.append(replace(n, midi_pitch=pitch))
    return out


def repair_register(notes: list[Note], settings: SegmenterSettings | None = None) -> list[Note]:
    """Fold notes an octave off the register of the notes around them back; drop short strays.

    A singer's melody moves mostly by step; a leap out and straight back is rare, an octave out
    and back rarer still, while a pitch tracker slips an octave now and then for a whole note and
    breaths, clicks and a room's tail make short pitched scraps anywhere. So a note that lies more
    than ``leap_semitones`` above (or below) both its neighbours (the one neighbour at either end
    of the take) is out of register: it is moved by octaves when that brings it within
    ``octave_tolerance_semitones`` of the register (the median of up to three notes each side),
    and otherwise dropped when it is shorter than ``stray_max_s``. A real leap that stays (the
    next notes follow it) has a neighbour near it and is kept. The first (last) note is not judged
    by a neighbour that is itself out of register: that neighbour is the scrap, judged next.
    Lengths are compared in whole frames, so the same notes later in a take get the same verdict.

    Parameters
    ----------
    notes : list of Note
        In time order.
    settings : SegmenterSettings, optional

    Returns
    -------
    list of Note
        The notes, folded or dropped as above; ``midi`` follows a folded ``midi_pitch``.
    """
    s = settings or SegmenterSettings()
    out = list(notes)
    i = 0
    while i < len(out) and len(out) >= 3:
        pitch = np.array([n.midi_pitch for n in out])
        near = [pitch[j] for j in (i - 1, i + 1) if 0 <= j < len(out)]
        d = pitch[i] - np.array(near)
        if len(near) == 1:
            # the first or last note has one neighbour: when that neighbour is itself out of its
            # own register (a scrap between this note and the next), the neighbour is the stray
            j = 1 if i == 0 else len(out) - 2
            if _leaps_from_both(pitch[j] - np.array([pitch[i], pitch[2 * j - i]]), s.leap_semitones):
                i += 1
                continue
        if _leaps_from_both(d, s.leap_semitones):
            around = np.concatenate([pitch[max(0, i - 3):i], pitch[i + 1:i + 4]])
            register = float(np.median(around))
            octaves = np.round((pitch[i] - register) / 12.0)
            n = out[i]
            if octaves != 0 and abs(pitch[i] - 12.0 * octaves - register) <= s.octave_tolerance_semitones:
                folded = n.midi_pitch - 12.0 * octaves
                out[i] = Note(n.onset_s, n.offset_s, folded, int(round(folded)), n.velocity)
            elif n.offset_s - n.onset_s < s.stray_max_s - 1e-6:  # lengths are whole frames:
                # the microsecond absorbs the float error of offset - onset
                del out[i]
                continue
        i += 1
    return out


def drop_below_register(notes: list[Note], settings: SegmenterSettings | None = None) -> list[Note]:
    """The notes without those far under the take's register: a hum in the room, not the singer.

    The register is the median pitch of all the notes, each weighed by its length; a note more
    than ``SegmenterSettings.below_register_semitones`` under it is dropped, however long and
    however many such notes there are (which :func:`repair_register`, judging each note by its
    neighbours, lets through when they follow one another). With fewer than three notes there
    is no register to judge by and all are kept.
    """
    s = settings or SegmenterSettings()
    if len(notes) < 3:
        return list(notes)
    pitch = np.array([n.midi_pitch for n in notes])
    # lengths in whole microseconds, so that the float error of offset - onset (which moves with
    # the take's start time) cannot tip a tie between two halves of the take: a later take gets
    # the same verdict
    length_us = np.round([(n.offset_s - n.onset_s) * 1e6 for n in notes]).astype(np.int64)
    order = np.argsort(pitch, kind="stable")
    cum = np.cumsum(length_us[order])
    register = pitch[order][min(int(np.searchsorted(cum, cum[-1] / 2.0)), len(notes) - 1)]
    return [n for n in notes if n.midi_pitch >= register - s.below_register_semitones]


def _leaps_from_both(d: np.ndarray, leap_semitones: float) -> bool:
    """Whether a note lies more than ``leap_semitones`` above all its neighbours, or below all
    of them (``d``: its pitch minus each neighbour's, semitones)."""
    return bool(np.all(d > leap_semitones) or np.all(d < -leap_semitones))


def interval_pitches(track: PitchTrack, intervals_s: np.ndarray,
                     settings: SegmenterSettings | None = None) -> np.ndarray:
    """The sung pitch over given note intervals, measured as :func:`segment_notes` measures it.

    For notes placed by someone else (an annotation, an edit in a score editor): the pitch the
    segmenter would give each if it had cut the note there.

    Parameters
    ----------
    track : PitchTrack
    intervals_s : np.ndarray, shape (n_notes, 2)
        Onset and offset of each note, s.
    settings : SegmenterSettings, optional

    Returns
    -------
    np.ndarray, shape (n_notes,)
        Fractional MIDI pitch; ``nan`` for an interval without a sung frame.
    """
    s = settings or SegmenterSettings()
    voiced = voicing(track, s)
    pitch = repair_octaves(track.midi_pitch, voiced, mixture_below=s.mixture_below_semitones)
    smooth = _smooth(pitch, voiced, s.smooth_frames)
    out = np.full(len(intervals_s), np.nan)
    for i, (on_s, off_s) in enumerate(np.asarray(intervals_s, float).reshape(-1, 2)):
        a = int(np.clip(round(on_s / track.hop_s), 0, len(track)))
        b = int(np.clip(round(off_s / track.hop_s), a, len(track)))
        if voiced[a:b].any():
            out[i] = _note_pitch(smooth[a:b])
    return out


# ---- steps ------------------------------------------------------------------------------------

def voicing(track: PitchTrack, s: SegmenterSettings) -> np.ndarray:
    """Boolean mask of sung frames, shape (n_frames,).

    A frame is sung when it is pitched and loud enough (see :class:`SegmenterSettings`). Each sung
    stretch then reaches back (up to ``onset_backtrack_s``) over the frames just before it that
    already hold its pitch, clearly pitched and a little above the noise floor: a note sung softly
    at first, or one whose start a room dims (its fundamental beats against the room's echo of it
    and of the note before, which also makes the frames less periodic), is heard from where its
    pitch is.
    """
    rms = track.rms_db
    floor, peak = level_reference_db(rms)
    # A take sung from start to end has no quiet frames to show the noise floor: then ask for
    # less headroom over the quietest frames (but never less than 40% of the take's range).
    snr = min(s.min_snr_db, 0.4 * (peak - floor))
    loud = (rms >= floor + snr) & (rms >= peak - s.max_below_peak_db)
    clear = (track.periodicity >= s.clear_periodicity) & (rms >= floor + s.clear_snr_db) \
        & (rms >= peak - s.max_below_peak_db)
    voiced = (track.periodicity >= s.min_periodicity) & np.isfinite(track.midi_pitch) & (loud | clear)
    _backtrack_onsets(voiced, track, floor, peak, s)
    # Bridge tiny gaps (a dropped frame), but not real syllable breaks.
    gap = int(round(s.bridge_gap_s / track.hop_s))
    for a, b in _runs(~voiced):
        if 0 < a and b < len(voiced) and b - a <= gap:
            voiced[a:b] = True
    return voiced


def _backtrack_onsets(voiced: np.ndarray, track: PitchTrack, floor_db: float, peak_db: float,
                      s: SegmenterSettings) -> None:
    """Extend each run of ``voiced`` (changed in place) back over the frames before it that hold
    its pitch (see :func:`voicing`); ``floor_db``, ``peak_db``: the take's noise floor and loud
    level, dB. A run may reach back to the run before it: the two are then one sung stretch,
    cut where the pitch changes (keeping a gap there measured 0.007 COnPOff worse on the even
    SSVD takes as recorded and 0.009 worse in a room of RT60 0.4 s: the gap was the room's
    tail or a frame the tracker doubted). A frame an octave off the pitch holds it too (the
    tracker's octave slip, frequent in a room's tail and at a quiet note end: SSVD 335 at
    RT60 0.4 s lost the last 0.35 s of a held note to single octave-low frames between quiet
    ones; on the 12 even SSVD takes COnPOff 0.653 -> 0.655 at RT60 0.4 s, 0.658 -> 0.662 in pink
    noise at 20 dB SNR, as recorded unchanged)."""
    rms = track.rms_db
    with np.errstate(invalid="ignore"):
        pitched = (track.periodicity >= s.backtrack_periodicity) & np.isfinite(track.midi_pitch) \
            & (rms >= floor_db + s.backtrack_snr_db) & (rms >= peak_db - s.max_below_peak_db)
    reach = int(round(s.onset_backtrack_s / track.hop_s))
    head = max(1, int(round(BACKTRACK_HEAD_S / track.hop_s)))
    for a, b in _runs(voiced):
        start_pitch = np.nanmedian(track.midi_pitch[a:min(b, a + head)])
        i = a
        while i > 0 and a - i < reach and pitched[i - 1] and not voiced[i - 1] \
                and _off_pitch(track.midi_pitch[i - 1] - start_pitch) < s.backtrack_semitones:
            i -= 1
        voiced[i:a] = True


def _off_pitch(d: float) -> float:
    """How far (semitones) a pitch ``d`` semitones from another is from it, read as the
    tracker's octave slip where that brings it closer."""
    return min(abs(d), abs(d - 12.0), abs(d + 12.0))


def syllable_loudness_db(track: PitchTrack, voiced: np.ndarray, bands: bool = False,
                         min_weight: float = 0.25):
    """The loudness in which the segmenter looks for syllables, dB, shape (n_frames,).

    The high-emphasised loudness (``PitchTrack.bright_db``) follows the upper harmonics and
    formants, where a consonant between two syllables leaves a deep dip; but noise around the
    singer (hiss, a fan, traffic, a crowd) fills those bands too, and most of all the highest,
    where the voice is weakest: in pink noise at 20 dB SNR the dips of the low SSVD voices are
    filled up. So each band of ``PitchTrack.bright_bands_db`` is weighed by how far the voice
    stands above the noise in it: with ``S`` its median power over the sung frames and ``N`` its
    median power over the frames away from the singing (:data:`SYLLABLE_NOISE_PERCENTILE`), by
    ``(1 - N / S) ** 2`` (0 where ``S <= N``): the square of a Wiener filter's gain, the share of
    the band's power that is voice. A clean take keeps nearly every band at full weight. On the
    even SSVD takes (``benchmarks/robustness.py``, COnPOff) it gave 0.672 -> 0.674 as recorded,
    0.623 -> 0.651 in pink noise at 20 dB SNR, 0.586 -> 0.612 in babble at 20 dB SNR, 0.573 ->
    0.576 in a room of RT60 0.4 s, 0.667 -> 0.668 through a telephone band; on the odd ones
    0.700 -> 0.696, 0.690 -> 0.691, 0.630 -> 0.670, 0.526 -> 0.513, 0.703 -> 0.699. (Subtracting
    the noise's power before weighing gained more in pink noise but lost in babble, whose level
    is not steady.)

    Parameters
    ----------
    track : PitchTrack
    voiced : np.ndarray, shape (n_frames,)
        Sung frames (:func:`voicing`).
    bands : bool
        Also return the bands that hold the voice (see below).
    min_weight : float
        ... those whose weight is at least this, the lowest band (the fundamental) left out.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        ``bright_bands_db`` weighed as above and summed; ``bright_db`` (else ``rms_db``) when the
        track has no bands, no frame is sung, or no band holds the voice above its noise.
    np.ndarray, shape (n_frames, n_kept), or None
        With ``bands``: the kept columns of ``bright_bands_db`` (None where there are none or
        the plain loudness is returned); the pair is returned.
    """
    plain = track.bright_db if track.bright_db is not None else track.rms_db
    bands_db = getattr(track, "bright_bands_db", None)
    if bands_db is None or not np.any(voiced):
        return (plain, None) if bands else plain
    power = 10.0 ** (np.asarray(bands_db, dtype=float) / 10.0)
    sound = np.max(bands_db, axis=1) > np.max(bands_db) - DIGITAL_SILENCE_BELOW_PEAK_DB
    guard = int(round(SYLLABLE_NOISE_GUARD_S / track.hop_s))
    near_song = np.convolve(np.asarray(voiced, float), np.ones(2 * guard + 1), mode="same") > 0
    unsung = sound & ~near_song
    if np.sum(unsung) * track.hop_s >= SYLLABLE_NOISE_MIN_S:
        noise = np.percentile(power[unsung], SYLLABLE_NOISE_PERCENTILE, axis=0)
    else:
        noise = np.percentile(power[sound], SYLLABLE_FALLBACK_PERCENTILE, axis=0)
    voice = np.median(power[voiced], axis=0)
    weight = np.clip(1.0 - noise / np.maximum(voice, 1e-30), 0.0, 1.0) ** 2
    if not np.any(weight > 0):
        return (plain, None) if bands else plain
    out = 10.0 * np.log10(power @ weight + 1e-20)
    if not bands:
        return out
    keep = weight >= min_weight
    keep[0] = False
    return out, (np.asarray(bands_db, dtype=float)[:, keep] if keep.any() else None)


def repair_octaves(midi_pitch: np.ndarray, voiced: np.ndarray, window: int = 25,
                   mixture_below: float = np.inf) -> np.ndarray:
    """Fold frames that sit about an octave from their neighbourhood's median back by 12.

    Frames more than ``mixture_below`` semitones under that median (two notes read at once, see
    ``SegmenterSettings.mixture_below_semitones``) take the repaired pitch of the frame after
    them (the median's at the end of a sung stretch).
    """
    p = np.where(voiced, midi_pitch, np.nan)
    out = p.copy()
    for a, b in _runs(voiced):
        seg = p[a:b]
        ref = _running_nanmedian(seg, window)
        d = seg - ref
        up = np.abs(d - 12) < 1.5
        down = np.abs(d + 12) < 1.5
        fixed = np.where(up, seg - 12, np.where(down, seg + 12, seg))
        for i in np.flatnonzero(d < -mixture_below)[::-1]:
            fixed[i] = fixed[i + 1] if i + 1 < len(fixed) else ref[i]
        out[a:b] = fixed
    return out


def _fold_octave_pieces(pieces, smooth: np.ndarray, max_end_frames: int,
                        tolerance_semitones: float = 1.5) -> bool:
    """Move each piece of one sung stretch that sits an octave from both pieces it touches back
    by that octave, and each piece at either end of the stretch that is shorter than
    ``max_end_frames`` and than the piece it touches and sits an octave from it (``smooth``
    changed in place); whether any was moved.

    The voice does not drop an octave and come back inside one breath without a break, but the
    tracker does: in a room the previous note's tail beats against the new one and YIN takes
    twice the period for a few tenths of a second (SSVD 335 at RT60 0.4 s held 0.56 s of a
    note an octave low, which :func:`repair_octaves`' 0.25 s median followed). Cut there, the
    note became three. The same slip at the start or end of a stretch lasts a few frames (a
    note's onset, its quiet end); a sung octave leap inside a breath holds its notes longer than
    ``max_end_frames`` (``SegmenterSettings.stray_max_s``) and is kept. On the 12 even SSVD takes
    (``benchmarks/robustness.py``, COnPOff): the pieces between two, 0.684 -> 0.685 as recorded,
    0.653 -> 0.655 at RT60 0.4 s, 0.676 -> 0.677 through a telephone band; with the end pieces,
    the octave-tolerant reach-back of :func:`voicing` and YIN's third-period check as well,
    0.684 -> 0.687, 0.653 -> 0.657, 0.676 -> 0.685, and 0.671 -> 0.674 through AAC.

    Parameters
    ----------
    pieces : list of (int, int)
        Consecutive frame ranges of one sung stretch (:func:`_split_by_pitch`).
    smooth : np.ndarray, shape (n_frames,)
        Smoothed pitch contour, MIDI.
    max_end_frames : int
        The longest end piece that is moved, frames.
    tolerance_semitones : float
        How far from exactly an octave the differences may be.
    """
    med = [float(np.median(smooth[c:d])) for c, d in pieces]
    shift = np.zeros(len(pieces))
    for i in range(1, len(pieces) - 1):
        for octave in (12.0, -12.0):
            if abs(med[i] - med[i - 1] - octave) < tolerance_semitones \
                    and abs(med[i] - med[i + 1] - octave) < tolerance_semitones:
                shift[i] = octave
    if len(pieces) >= 2:
        for i, j in ((0, 1), (len(pieces) - 1, len(pieces) - 2)):
            length = pieces[i][1] - pieces[i][0]
            if length < max_end_frames and length < pieces[j][1] - pieces[j][0]:
                for octave in (12.0, -12.0):
                    if abs(med[i] - med[j] - octave) < tolerance_semitones:
                        shift[i] = octave
    for (c, d), octave in zip(pieces, shift):
        smooth[c:d] -= octave
    return bool(np.any(shift))


def _split_by_pitch(smooth: np.ndarray, a: int, b: int, s: SegmenterSettings, hop: float):
    """Cut [a, b) where the pitch settles on a new value for ``change_hold_s`` (the cut moved
    back to where the new pitch first holds, see ``SegmenterSettings.change_back_s``)."""
    hold = max(1, int(round(s.change_hold_s / hop)))
    back = int(round(s.change_back_s / hop))
    cuts = [a]
    start = a
    i = a + hold
    while i < b:
        ref = np.median(smooth[start:i][-max(hold * 3, 1):]) if i - start >= hold else smooth[start]
        ahead = smooth[i:i + hold]
        if len(ahead) == hold and np.all(np.abs(ahead - ref) > s.change_semitones) \
                and np.ptp(ahead) < 2 * s.change_semitones:
            # The glide belongs to the note it leaves: on SSVD, giving it to the new note put
            # onsets early (annotators mark the onset where the new pitch sounds).
            i = _new_pitch_start(smooth, i, max(start + hold, i - back), float(np.median(ahead)), s)
            cuts.append(i)
            start = i
            i += hold
            continue
        i += 1
    cuts.append(b)
    return [(c, d) for c, d in zip(cuts, cuts[1:]) if d > c]


def _new_pitch_start(smooth: np.ndarray, i: int, earliest: int, new_pitch: float,
                     s: SegmenterSettings) -> int:
    """The earliest frame ``q`` in [earliest, i] on ``new_pitch`` (within
    ``change_back_semitones``) from which on at least ``change_back_share`` of the frames up to
    ``i`` are; ``i`` when there is none."""
    best = i
    for q in range(i - 1, earliest - 1, -1):
        on_new = np.abs(smooth[q:i] - new_pitch) <= s.change_back_semitones
        if on_new[0] and on_new.mean() >= s.change_back_share:
            best = q
    return best


def _merge_scoops(pieces, smooth: np.ndarray, s: SegmenterSettings, hop: float):
    """Join each short piece that glides towards the pitch of the piece right after it to that
    piece: a scoop up (or down) into a note belongs to the note (on the even SSVD takes, cutting
    it off as a note of its own cost 0.9 points of COn and 0.5 of COnPOff)."""
    max_len = int(round(s.scoop_max_s / hop))
    out = list(pieces)
    i = 0
    while i + 1 < len(out):
        (a, b), (c, d) = out[i], out[i + 1]
        if b == c and b - a < max_len:
            target = np.median(smooth[c:d])
            if abs(smooth[a] - target) - abs(smooth[b - 1] - target) > s.scoop_approach_semitones:
                out[i] = (a, d)
                del out[i + 1]
                continue
        i += 1
    return out


def _split_by_dips(rms_db: np.ndarray, a: int, b: int, s: SegmenterSettings, hop: float,
                   bands_db: np.ndarray | None = None):
    """Cut [a, b) at loudness dips: a syllable onset on the same pitch; with ``bands_db``
    (n_frames, n_bands), only at dips that ``dip_band_share`` of the bands show too."""
    w = max(2, int(round(s.dip_window_s / hop)))
    min_len = max(1, int(round(s.min_note_s / hop)))
    seg = rms_db[a:b]
    cuts = [a]
    n = len(seg)
    if n < 2 * min_len:
        return [(a, b)]
    # Smoothed with the end frames repeated (zeros beyond the ends would read as loud dB there).
    sm = np.convolve(np.pad(seg, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    if bands_db is not None:
        band_sm = _smooth3(bands_db[a:b])
    i = min_len
    while i < n - min_len:
        if sm[i] <= sm[i - 1] and sm[i] <= sm[i + 1]:
            left = sm[max(0, i - w):i].max()
            right = sm[i + 1:min(n, i + 1 + w)].max()
            if min(left, right) - sm[i] >= s.dip_db and (
                    bands_db is None or _band_share(band_sm, i, w, s.dip_band_db) >= s.dip_band_share):
                # The new note starts where the loudness rises out of the dip.
                j = i
                while j + 1 < n and sm[j + 1] - sm[i] < 0.5 * (right - sm[i]) and j - i < w:
                    j += 1
                cut = a + i + max(0, (j - i) // 2)
                if cut - cuts[-1] >= min_len:
                    cuts.append(cut)
                i += min_len
                continue
        i += 1
    cuts.append(b)
    return [(c, d) for c, d in zip(cuts, cuts[1:]) if d > c]


def _smooth3(x: np.ndarray) -> np.ndarray:
    """Three-frame running mean along axis 0, the end frames repeated."""
    p = np.concatenate([x[:1], x, x[-1:]])
    return (p[:-2] + p[1:-1] + p[2:]) / 3.0


def _band_share(band_sm: np.ndarray, i: int, w: int, depth_db: float) -> float:
    """The share of the bands (columns of ``band_sm``) whose level at frame ``i`` lies at least
    ``depth_db`` under the smaller of their peaks within ``w`` frames on either side."""
    n = len(band_sm)
    left = band_sm[max(0, i - w):i].max(axis=0)
    right = band_sm[i + 1:min(n, i + 1 + w)].max(axis=0)
    return float(np.mean(np.minimum(left, right) - band_sm[i] >= depth_db))


def _clean_up(notes, smooth, s: SegmenterSettings, hop: float):
    """Merge short fragments into an adjoining note at a similar pitch; drop the rest."""
    min_len = max(1, int(round(s.min_note_s / hop)))
    out: list[list[int]] = []
    for a, b in notes:
        if b - a >= min_len:
            out.append([a, b])
            continue
        # A short fragment touching the previous note: a glide tail or a wobble. Merge.
        if out and out[-1][1] == a and abs(np.median(smooth[a:b]) - np.median(smooth[out[-1][0]:out[-1][1]])) < 1.5:
            out[-1][1] = b
    # Any other fragment shorter than min_len (a scoop into the next note, a blip) is dropped.
    return [(a, b) for a, b in out]


def _refine_onsets(notes, rms_db: np.ndarray, s: SegmenterSettings, hop: float):
    """Move each onset to where the note's loudness has risen to within ``onset_rise_db`` of its
    peak (at most ``onset_search_s`` later, and never past the note's middle); end each note
    where its loudness has fallen (``offset_fall_db``, ``joined_offset_fraction``), or at the
    knee of its final fall into a room's decay (:func:`_tail_knee`)."""
    search = max(1, int(round(s.onset_search_s / hop)))
    tail = max(1, int(round(s.joined_offset_search_s / hop)))
    delay = int(round(s.joined_onset_delay_s / hop))
    floor_db, _ = level_reference_db(rms_db)
    out = []
    for n, (a, b) in enumerate(notes):
        peak = rms_db[a:b].max()
        limit = min(a + search, a + (b - a) // 2)
        j = a
        while j < limit and rms_db[j] < peak - s.onset_rise_db:
            j += 1
        if n > 0 and notes[n - 1][1] == a:
            j = min(j + delay, limit)
        k = b
        while k - 1 > j + (b - j) // 2 and rms_db[k - 1] < peak - s.offset_fall_db:
            k -= 1
        joined = n + 1 < len(notes) and notes[n + 1][0] == b
        if joined and k == b:
            # Sung straight into the next note: this one is heard to end where its loudness has
            # fallen part of the way to the quietest moment just before the next begins
            # (measured on SSVD: ending it at the next onset put a quarter of such offsets late;
            # at the quietest moment itself, a room's tail put them late).
            lo = max(j + (b - j) // 2, b - tail)
            if b - lo > 1:
                k = max(lo + _joined_end(rms_db[lo:b], s.joined_offset_fraction), j + 1)
        stop = notes[n + 1][0] if n + 1 < len(notes) else len(rms_db)
        k = max(_tail_knee(rms_db, j + (b - j) // 2, k, stop, floor_db, s, hop), j + 1)
        out.append((j, k))
    return out


def _tail_knee(level_db: np.ndarray, mid: int, end: int, stop: int, floor_db: float,
               s: SegmenterSettings, hop: float) -> int:
    """Where a note's final fall turns into a room's decay (see ``SegmenterSettings.tail_top_db``).

    Parameters
    ----------
    level_db : np.ndarray, shape (n_frames,)
        The take's loudness, dB.
    mid, end : int
        The note's middle frame and its end so far (exclusive).
    stop : int
        The next note's first frame (the take's length after the last note): the fall is followed
        no further.
    floor_db : float
        The take's noise floor, dB.

    Returns
    -------
    int
        The end (exclusive): the knee when it lies before ``end``, else ``end``.
    """
    if end - mid < 2:
        return end
    top = level_db[mid:end].max()
    start = mid + int(np.flatnonzero(level_db[mid:end] >= top - s.tail_top_db)[-1])
    last = min(stop, start + int(round(s.tail_max_s / hop)))
    e = end
    while e < last and level_db[e] > floor_db + s.tail_floor_db:
        e += 1
    e = start + int(np.argmin(level_db[start:e])) + 1 if e > start else e
    min_tail = max(1, int(round(s.tail_min_s / hop)))
    y = np.asarray(level_db[start:e], dtype=float)
    if len(y) < 2 + min_tail:
        return end
    # two straight lines joined at frame q: y ~ c + f1 x + f2 max(0, x - q), by least squares
    x = np.arange(len(y), dtype=float)
    best = None
    for q in range(2, len(y) - min_tail + 1):
        basis = np.stack([np.ones(len(y)), x, np.maximum(0.0, x - q)], axis=1)
        coef = np.linalg.lstsq(basis, y, rcond=None)[0]
        sse = float(np.sum((basis @ coef - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, q, -coef[1], -(coef[1] + coef[2]))
    _, q, voice_fall, room_fall = best
    if s.tail_min_db_per_s * hop <= room_fall <= s.tail_max_db_per_s * hop \
            and voice_fall >= s.tail_knee_ratio * room_fall:
        return min(end, start + q)
    return end


def _joined_end(level_db: np.ndarray, fraction: float) -> int:
    """Index of the first frame of ``level_db`` (shape (n,), dB; n >= 1) that is at most
    ``fraction`` of the way from its lowest frame to its highest, counted up to the lowest frame
    (0: the first lowest frame)."""
    low_at = int(np.argmin(level_db))
    low, top = level_db[low_at], float(np.max(level_db))
    return int(np.argmax(level_db[:low_at + 1] <= low + fraction * (top - low)))


def _note_pitch(contour: np.ndarray) -> float:
    """A note's sung pitch from its smoothed contour, fractional MIDI."""
    return float(np.median(_steady_part(contour)))


def _steady_part(seg: np.ndarray) -> np.ndarray:
    """A note without its last 15%: the release and the glide into the next note, which
    :func:`_split_by_pitch` leaves on the note being left. The start is kept: the onset has already
    been moved past a voiced consonant (:func:`_refine_onsets`), and on the even SSVD takes
    also dropping the first 20% lost 1.2 points of COnP (0.697 -> 0.685)."""
    n = len(seg)
    if n < 5:
        return seg
    return seg[:int(np.ceil(n * 0.85))]


# ---- helpers ----------------------------------------------------------------------------------

def _runs(mask: np.ndarray):
    """[(start, stop), ...] of the True runs of a boolean array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _fill_nan(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    ok = np.isfinite(x)
    if not ok.any():
        return x
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def _smooth(pitch: np.ndarray, voiced: np.ndarray, k: int) -> np.ndarray:
    filled = _fill_nan(np.where(voiced, pitch, np.nan))
    if k > 1 and np.isfinite(filled).any():
        filled = median_filter_nearest(filled, k)
    return filled


def median_filter_nearest(x: np.ndarray, k: int) -> np.ndarray:
    """Running median over ``k`` samples with the edge samples repeated beyond the ends (what
    ``scipy.ndimage.median_filter(x, size=k, mode="nearest")`` computes; numpy only, so the
    transcription stage does not pay scipy.ndimage's import)."""
    x = np.asarray(x, dtype=float)
    left = k // 2
    right = k - 1 - left
    padded = np.pad(x, (left, right), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    # the element of rank k // 2: the median for odd k, the upper median for even k (as scipy)
    return np.partition(windows, k // 2, axis=1)[:, k // 2]


def _running_nanmedian(x: np.ndarray, window: int) -> np.ndarray:
    n = len(x)
    if n <= window:
        return np.full(n, np.nanmedian(x))
    pad = window // 2
    xp = np.pad(x, pad, mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(xp, window)[:n]
    return np.nanmedian(view, axis=1)
